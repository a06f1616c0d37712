/**
 * `latency`: the lowest smoothed time to first token this router has seen.
 * A node not measured yet counts as fastest, so every node gets tried; full
 * nodes are passed over while others have room.
 */
import { busyRatio, leastRecent, type Candidate, type RouteRequest, type Strategy } from "./types";

export class LatencyStrategy implements Strategy {
  readonly name = "latency";

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    const withRoom = candidates.filter((c) => busyRatio(c) < 1);
    const pool = withRoom.length ? withRoom : candidates;
    const best = Math.min(...pool.map((c) => c.latencyMs ?? 0));
    return leastRecent(pool.filter((c) => (c.latencyMs ?? 0) === best));
  }
}
