/**
 * Which node served each conversation last (its affinity key: lib/routing/affinity-key.ts),
 * so that the next turn can go back to the KV cache that holds its beginning. The most
 * recently used 10,000 conversations are kept.
 */
import { busyRatio, type Candidate } from "./types";

const MAX_REMEMBERED = 10_000;

export class ConversationOwners {
  private readonly owners = new Map<string, string>();

  /** The node that served the conversation last. */
  ownerOf(key: string | undefined): string | undefined {
    return key === undefined ? undefined : this.owners.get(key);
  }

  /** That node, when it is among the candidates and has a free slot. */
  withRoom(candidates: Candidate[], key: string | undefined): Candidate | undefined {
    const id = this.ownerOf(key);
    if (id === undefined) return undefined;
    const owner = candidates.find((c) => c.nodeID === id);
    return owner && busyRatio(owner) < 1 ? owner : undefined;
  }

  remember(key: string, nodeID: string): void {
    this.owners.delete(key);
    this.owners.set(key, nodeID);
    if (this.owners.size > MAX_REMEMBERED) this.owners.delete(this.owners.keys().next().value as string);
  }
}
