/**
 * `affinity`: a conversation (same `user`, or the same opening messages) goes
 * back to the node that served it while that node has a free slot, so its KV
 * cache is reused; otherwise `auto` decides and the conversation moves there.
 */
import { AutoStrategy } from "./auto";
import { busyRatio, type Candidate, type RouteRequest, type Strategy } from "./types";

const MAX_REMEMBERED = 10_000;

export class AffinityStrategy implements Strategy {
  readonly name = "affinity";
  private readonly fallback = new AutoStrategy();
  private readonly owners = new Map<string, string>();

  select(candidates: Candidate[], request: RouteRequest): Candidate {
    const key = request.affinityKey;
    if (key) {
      const owner = candidates.find((c) => c.nodeID === this.owners.get(key));
      if (owner && busyRatio(owner) < 1) return owner;
    }
    const chosen = this.fallback.select(candidates, request);
    if (key) this.remember(key, chosen.nodeID);
    return chosen;
  }

  private remember(key: string, nodeID: string): void {
    this.owners.delete(key);
    this.owners.set(key, nodeID);
    if (this.owners.size > MAX_REMEMBERED) this.owners.delete(this.owners.keys().next().value as string);
  }
}
