/** `least_busy`: the smallest share of busy slots; among equals, the least recently used. */
import {
  busyRatio,
  freeSlots,
  lowestThenLeastRecent,
  type Candidate,
  type Explanation,
  type RouteRequest,
  type Strategy,
} from "./types";

export class LeastBusyStrategy implements Strategy {
  readonly name = "least_busy";

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    return lowestThenLeastRecent(candidates, busyRatio);
  }

  explain(candidates: Candidate[], request?: RouteRequest): Explanation {
    return {
      strategy: this.name,
      rule: "the smallest share of busy slots ((active + queued) / capacity), then least recently used",
      picked: this.select(candidates, request).nodeID,
      candidates: candidates.map((c) => ({
        nodeID: c.nodeID,
        score: busyRatio(c),
        factors: { active: c.active, queued: c.queued, capacity: c.capacity, free_slots: freeSlots(c) },
      })),
    };
  }
}
