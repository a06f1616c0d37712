/**
 * Where a request's upstreams come from. Local models: the balancer picks a
 * node or runtime for each attempt (never one already tried) and is told
 * when the attempt is over. Cloud models: their provider, the same for every
 * attempt.
 */
import type { LaneReceiver } from "../cluster/lane-receiver";
import type { Balancer } from "../routing/balancer";
import { CloudUpstream } from "./cloud";
import { NodeUpstream } from "./node";
import { RuntimeUpstream } from "./runtime";
import type { Caller, Outcome, Upstream, UpstreamSource, Warner } from "./types";

export interface BalancedRequest {
  model: string;
  /** The conversation, for the `affinity` strategy. */
  affinityKey?: string;
  /** A node to take while it has a free slot, whatever the strategy (the one holding a continued conversation). */
  preferNode?: string;
  /** Longest wait for a node (ms), shorter than the queue's: the model has fallbacks. */
  waitMs?: number;
  /** Its place in the wait queue (lib/routing/wait-queue.ts). */
  priority?: number;
  fairKey?: string;
}

export function balancedSource(
  balancer: Balancer,
  caller: Caller,
  request: BalancedRequest,
  opts: { log: Warner; timeoutMs: number; lanes?: LaneReceiver | null },
): UpstreamSource {
  return {
    async next(tried) {
      const s = await balancer.select({
        model: request.model,
        exclude: tried,
        affinityKey: request.affinityKey,
        preferNode: request.preferNode,
        waitMs: request.waitMs,
        priority: request.priority,
        fairKey: request.fairKey,
      });
      return s.runtime
        ? new RuntimeUpstream(s.runtime, s.nodeID, s.machineName, opts.timeoutMs)
        : new NodeUpstream(caller, s.nodeID, s.machineName, opts.log, s.loadMs, s.queue, opts.lanes);
    },
    done(u: Upstream, outcome: Outcome, ttftMs?: number) {
      balancer.finished({ nodeID: u.id, outcome, ttftMs });
    },
  };
}

export function cloudSource(caller: Caller, provider: string, model: string): UpstreamSource {
  const upstream = new CloudUpstream(caller, provider, model);
  return {
    next: async () => upstream,
    done: () => undefined,
  };
}
