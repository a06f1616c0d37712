/** `random`: a random node, weighted by its free slots (a full node keeps a small chance). */
import { freeSlots, type Candidate, type Explanation, type RouteRequest, type Strategy } from "./types";

function weightOf(c: Candidate): number {
  return freeSlots(c) + 0.1;
}

export class RandomStrategy implements Strategy {
  readonly name = "random";

  constructor(private readonly rand: () => number = Math.random) {}

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    const weights = candidates.map(weightOf);
    let r = this.rand() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < candidates.length; i++) {
      r -= weights[i];
      if (r < 0) return candidates[i];
    }
    return candidates[candidates.length - 1];
  }

  explain(candidates: Candidate[], _request?: RouteRequest): Explanation {
    const total = candidates.reduce((a, c) => a + weightOf(c), 0);
    return {
      strategy: this.name,
      rule: "chance, weighted by free slots (+0.1, so a full node keeps a small chance); score = probability",
      picked: null,
      candidates: candidates.map((c) => ({
        nodeID: c.nodeID,
        score: weightOf(c) / total,
        factors: { free_slots: freeSlots(c), weight: weightOf(c) },
      })),
    };
  }
}
