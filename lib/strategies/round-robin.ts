/** `round_robin`: each node in turn, in a stable order (by node ID). */
import type { Candidate, RouteRequest, Strategy } from "./types";

export class RoundRobinStrategy implements Strategy {
  readonly name = "round_robin";
  private counter = 0;

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    const sorted = [...candidates].sort((a, b) => a.nodeID.localeCompare(b.nodeID));
    return sorted[this.counter++ % sorted.length];
  }
}
