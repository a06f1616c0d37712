/** The key that ties requests of one conversation together, for the `affinity` strategy. */
import { digest } from "../auth/digest";
import type { ChatMessage } from "../inference/types";

/**
 * The client's `prompt_cache_key` (what agents send to keep their turns on
 * one cache), else its `user`, else a hash of the model and the
 * conversation's opening (system + first user message).
 */
export function affinityKey(
  model: string,
  user: string | undefined,
  messages: ChatMessage[] | undefined,
  cacheKey?: string,
): string | undefined {
  if (cacheKey) return `cache:${model}\0${cacheKey}`;
  if (user) return `user:${user}`;
  if (!messages?.length) return undefined;
  const firstUser = messages.findIndex((m) => m.role === "user");
  // without a user message the whole list is the opening (else every such request would share one key)
  const opening = firstUser < 0 ? messages : messages.slice(0, firstUser + 1);
  return `prefix:${digest("sha1", `${model}\0${JSON.stringify(opening)}`, "base64url")}`;
}
