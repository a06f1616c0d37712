/** `least_busy`: the smallest share of busy slots; among equals, the least recently used. */
import { busyRatio, leastRecent, type Candidate, type RouteRequest, type Strategy } from "./types";

export class LeastBusyStrategy implements Strategy {
  readonly name = "least_busy";

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    const best = Math.min(...candidates.map(busyRatio));
    return leastRecent(candidates.filter((c) => busyRatio(c) === best));
  }
}
