/**
 * `latency`: the lowest smoothed time to first token this router has seen.
 * A node not measured yet counts as fastest, so every node gets tried; full
 * nodes are passed over while others have room.
 */
import {
  busyRatio,
  freeSlots,
  lowestThenLeastRecent,
  type Candidate,
  type Explanation,
  type RouteRequest,
  type Strategy,
} from "./types";

/** The nodes it chooses among: those with room, or all when none has. */
function poolOf(candidates: Candidate[]): Candidate[] {
  const withRoom = candidates.filter((c) => busyRatio(c) < 1);
  return withRoom.length ? withRoom : candidates;
}

export class LatencyStrategy implements Strategy {
  readonly name = "latency";

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    // the pool of poolOf, without building it
    const hasRoom = (c: Candidate) => busyRatio(c) < 1;
    return lowestThenLeastRecent(candidates, (c) => c.latencyMs ?? 0, candidates.some(hasRoom) ? hasRoom : undefined);
  }

  explain(candidates: Candidate[], request?: RouteRequest): Explanation {
    const pool = poolOf(candidates);
    return {
      strategy: this.name,
      rule: "the lowest smoothed time to first token (unmeasured counts as 0) among nodes with a free slot, then least recently used",
      picked: this.select(candidates, request).nodeID,
      candidates: candidates.map((c) => ({
        nodeID: c.nodeID,
        score: c.latencyMs ?? 0,
        factors: { latency_ms: c.latencyMs, free_slots: freeSlots(c), considered: pool.includes(c) },
      })),
    };
  }
}
