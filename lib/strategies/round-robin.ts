/** `round_robin`: each node in turn, in a stable order (by node ID). */
import type { Candidate, Explanation, RouteRequest, Strategy } from "./types";

function ordered(candidates: Candidate[]): Candidate[] {
  // the balancer passes them in node-ID order already: checking costs n comparisons, sorting n log n and a copy
  for (let i = 1; i < candidates.length; i++) {
    if (candidates[i - 1].nodeID.localeCompare(candidates[i].nodeID) > 0) {
      return [...candidates].sort((a, b) => a.nodeID.localeCompare(b.nodeID));
    }
  }
  return candidates;
}

export class RoundRobinStrategy implements Strategy {
  readonly name = "round_robin";
  private counter = 0;

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    const sorted = ordered(candidates);
    return sorted[this.counter++ % sorted.length];
  }

  explain(candidates: Candidate[], _request?: RouteRequest): Explanation {
    const sorted = ordered(candidates);
    const turn = this.counter % sorted.length;
    return {
      strategy: this.name,
      rule: "each node in turn, in node-ID order; score = turns until it is picked",
      picked: sorted[turn].nodeID,
      candidates: sorted.map((c, i) => ({
        nodeID: c.nodeID,
        score: (i - turn + sorted.length) % sorted.length,
        factors: { position: i },
      })),
    };
  }
}
