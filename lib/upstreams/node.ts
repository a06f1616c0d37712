/** An inference node of the cluster, reached over the transporter (services/inference.service.ts). */
import { Readable } from "node:stream";
import type { LaneReceiver } from "../cluster/lane-receiver";
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
    /** This process's token lanes (lib/cluster/token-lanes.ts): a stream's chunks come over the node's lane. */
    private readonly lanes: LaneReceiver | null = null,
  ) {}

  async open(call: Call): Promise<unknown> {
    checkLocalSupport(call);
    // the trace goes along in the call's meta (Moleculer carries it over NATS); the job stays what the node runs
    const meta: Record<string, unknown> | undefined = call.traceparent ? { traceparent: call.traceparent } : undefined;
    const job = jobOf(call);
    if (!this.lanes || !call.stream) return this.caller.call(`inference.${call.op}`, job, { nodeID: this.id, meta });
    // the sink is there before the node can send to it
    const sink = this.lanes.open(call.requestId, this.id);
    try {
      const answer = await this.caller.call(`inference.${call.op}`, job, {
        nodeID: this.id,
        // laneTokens: a token's chunk may come as its text alone (lib/cluster/lane-tokens.ts)
        meta: { ...meta, lane: true, laneTokens: true },
      });
      if ((answer as { lane?: unknown } | null)?.lane === true && !(answer instanceof Readable)) return sink;
      // a node without lanes (or in this process): its own stream
      this.lanes.drop(call.requestId);
      return answer;
    } catch (err) {
      this.lanes.drop(call.requestId);
      throw err;
    }
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
