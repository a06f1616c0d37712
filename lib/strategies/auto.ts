/**
 * `auto`: the lowest load score from heartbeat metrics. Busy slots dominate;
 * GPU (or CPU) utilisation, used VRAM, and being slower than the fastest node
 * (tokens/s, time to first token) break near-ties; among nodes that score
 * alike, the one this router used least recently wins, so idle nodes share
 * sequential traffic instead of one taking all of it.
 */
import { busyRatio, leastRecent, type Candidate, type RouteRequest, type Strategy } from "./types";

const WEIGHTS = { busy: 1, utilization: 0.3, vram: 0.1, slowness: 0.2, latency: 0.2 };
const TIE = 0.05;

/** Score without the speed terms, which need the other candidates. */
export function loadScore(c: Candidate): number {
  const util = (c.gpuUtilization ?? c.cpuUsage) / 100;
  const vram = c.vramFreeRatio === null ? 0 : 1 - c.vramFreeRatio;
  return WEIGHTS.busy * busyRatio(c) + WEIGHTS.utilization * util + WEIGHTS.vram * vram;
}

/** 0 for the best of `values`, towards 1 for much worse (lower is better unless `higherIsBetter`). */
function relative(value: number | null, values: Array<number | null>, higherIsBetter: boolean): number {
  const known = values.filter((v): v is number => v !== null && v > 0);
  if (value === null || value <= 0 || known.length < 2) return 0;
  const best = higherIsBetter ? Math.max(...known) : Math.min(...known);
  return higherIsBetter ? 1 - value / best : 1 - best / value;
}

/**
 * Expected time until a request sent to `c` now would be answered: waiting for
 * a slot (when all are busy, about one service time per `capacity` requests
 * ahead, counting those waiting at the router) plus one service time (the
 * smoothed answer time this router measured).
 */
export function expectedCompletionMs(c: Candidate, waitingAhead = 0): number {
  const service = c.latencyMs ?? 0;
  // a free slot is free now; for a full node, those already waiting (for such slots) go first
  const ahead = busyRatio(c) < 1 ? 0 : c.active + c.queued - c.capacity + 1 + waitingAhead;
  const wait = ahead > 0 ? (service * ahead) / Math.max(c.capacity, 1) : 0;
  return wait + service;
}

const COMPLETION_TIE = 1.1;

export class AutoStrategy implements Strategy {
  readonly name = "auto";
  /** Sees full nodes: waiting for a fast node can beat a free slot on a slow one. */
  readonly seesFullNodes = true;

  select(candidates: Candidate[], request?: RouteRequest): Candidate {
    // once every node has been measured: the soonest expected answer
    if (candidates.every((c) => c.latencyMs !== null)) {
      const times = candidates.map((c) => ({ c, t: expectedCompletionMs(c, request?.waitingAhead ?? 0) }));
      const best = Math.min(...times.map((x) => x.t));
      const near = times.filter((x) => x.t <= best * COMPLETION_TIE).map((x) => x.c);
      const withRoom = near.filter((c) => busyRatio(c) < 1);
      return withRoom.length ? this.byLoad(withRoom) : this.byLoad(near);
    }
    // before that: the lowest load among nodes with a free slot
    const withRoom = candidates.filter((c) => busyRatio(c) < 1);
    return this.byLoad(withRoom.length ? withRoom : candidates);
  }

  private byLoad(candidates: Candidate[]): Candidate {
    const tps = candidates.map((c) => c.tokensPerSecond);
    const lat = candidates.map((c) => c.latencyMs);
    const scored = candidates.map((c) => ({
      c,
      score:
        loadScore(c) +
        WEIGHTS.slowness * relative(c.tokensPerSecond, tps, true) +
        WEIGHTS.latency * relative(c.latencyMs, lat, false),
    }));
    const best = Math.min(...scored.map((s) => s.score));
    return leastRecent(scored.filter((s) => s.score <= best + TIE).map((s) => s.c));
  }
}
