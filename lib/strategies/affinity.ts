/**
 * `affinity`: a conversation (same `user`, or the same opening messages) goes
 * back to the node that served it while that node has a free slot, so its KV
 * cache is reused; otherwise `auto` decides and the conversation moves there.
 */
import { AutoStrategy } from "./auto";
import { ConversationOwners } from "./owners";
import type { Candidate, Explanation, RouteRequest, Strategy } from "./types";

export class AffinityStrategy implements Strategy {
  readonly name = "affinity";
  private readonly fallback = new AutoStrategy();
  private readonly owners = new ConversationOwners();

  select(candidates: Candidate[], request: RouteRequest): Candidate {
    const key = request.affinityKey;
    const owner = this.owners.withRoom(candidates, key);
    if (owner) return owner;
    const chosen = this.fallback.byLoad(candidates, request);
    if (key) this.owners.remember(key, chosen.nodeID);
    return chosen;
  }

  explain(candidates: Candidate[], request: RouteRequest): Explanation {
    const key = request.affinityKey;
    const owner = this.owners.withRoom(candidates, key);
    const auto = this.fallback.explain(candidates, { ...request, affinityKey: undefined });
    const ownerID = this.owners.ownerOf(key);
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
}
