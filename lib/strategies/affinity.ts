/**
 * `affinity`: a conversation (same `user`, or the same opening messages) goes
 * back to the node that served it while that node has a free slot, so its KV
 * cache is reused; otherwise `auto` decides and the conversation moves there.
 */
import { AutoStrategy } from "./auto";
import { busyRatio, type Candidate, type Explanation, type RouteRequest, type Strategy } from "./types";

const MAX_REMEMBERED = 10_000;

export class AffinityStrategy implements Strategy {
  readonly name = "affinity";
  private readonly fallback = new AutoStrategy();
  private readonly owners = new Map<string, string>();

  select(candidates: Candidate[], request: RouteRequest): Candidate {
    const key = request.affinityKey;
    const owner = this.ownerWithRoom(candidates, key);
    if (owner) return owner;
    const chosen = this.fallback.select(candidates, request);
    if (key) this.remember(key, chosen.nodeID);
    return chosen;
  }

  explain(candidates: Candidate[], request: RouteRequest): Explanation {
    const key = request.affinityKey;
    const owner = this.ownerWithRoom(candidates, key);
    const auto = this.fallback.explain(candidates, request);
    const ownerID = key ? this.owners.get(key) : undefined;
    return {
      strategy: this.name,
      rule: owner
        ? "the conversation's node has a free slot: it keeps the conversation"
        : `${key ? "the conversation has no node with a free slot" : "no conversation key"}; auto decides: ${auto.rule}`,
      picked: owner ? owner.nodeID : auto.picked,
      candidates: auto.candidates.map((s) => ({
        ...s,
        factors: { ...s.factors, owns_conversation: s.nodeID === ownerID },
      })),
    };
  }

  private ownerWithRoom(candidates: Candidate[], key: string | undefined): Candidate | undefined {
    if (!key) return undefined;
    const owner = candidates.find((c) => c.nodeID === this.owners.get(key));
    return owner && busyRatio(owner) < 1 ? owner : undefined;
  }

  private remember(key: string, nodeID: string): void {
    this.owners.delete(key);
    this.owners.set(key, nodeID);
    if (this.owners.size > MAX_REMEMBERED) this.owners.delete(this.owners.keys().next().value as string);
  }
}
