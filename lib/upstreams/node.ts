/** An inference node of the cluster, reached over the transporter (services/inference.service.ts). */
import { checkLocalSupport } from "./local-support";
import { jobOf, type Call, type Caller, type Upstream, type Warner } from "./types";

export class NodeUpstream implements Upstream {
  readonly kind = "node";
  readonly speaksResponses = false;

  constructor(
    private readonly caller: Caller,
    readonly id: string,
    readonly name: string | null,
    private readonly log: Warner,
    readonly loadMs?: number,
    readonly queue?: { ahead: number; waitedMs: number },
  ) {}

  async open(call: Call): Promise<unknown> {
    checkLocalSupport(call);
    // the trace goes along in the call's meta (Moleculer carries it over NATS); the job stays what the node runs
    const meta = call.traceparent ? { traceparent: call.traceparent } : undefined;
    return this.caller.call(`inference.${call.op}`, jobOf(call), { nodeID: this.id, meta });
  }

  /** The node stops generating; one that cannot be told is logged (it may go on until the request's end). */
  cancel(call: Call): void {
    void cancelOnNode(this.caller, this.id, call.requestId, this.log);
  }
}

export async function cancelOnNode(caller: Caller, nodeID: string, requestId: string, log: Warner): Promise<void> {
  try {
    await caller.call("inference.cancel", { requestId }, { nodeID });
  } catch (err) {
    log.warn(`could not cancel ${requestId} on node ${nodeID}: ${(err as Error)?.message ?? err}`);
  }
}
