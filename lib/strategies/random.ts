/** `random`: a random node, weighted by its free slots (a full node keeps a small chance). */
import type { Candidate, RouteRequest, Strategy } from "./types";

export class RandomStrategy implements Strategy {
  readonly name = "random";

  constructor(private readonly rand: () => number = Math.random) {}

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    const weights = candidates.map((c) => Math.max(c.capacity - c.active - c.queued, 0) + 0.1);
    let r = this.rand() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < candidates.length; i++) {
      r -= weights[i];
      if (r < 0) return candidates[i];
    }
    return candidates[candidates.length - 1];
  }
}
