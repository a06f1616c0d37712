/**
 * A gateway's memory of the API keys the key service confirmed (router
 * replicas and the processes of LLM_ROUTER_PROCESSES), so a request with a
 * known key is admitted without a call to that service. Entries live
 * `ttlMs` (the key service is asked again, which also keeps the key's last
 * use current) and never past the key's own expiry; the key service empties
 * every gateway's cache before it answers a change (revoke, edit). Keys with
 * limits (their own or their user's) are not kept: their requests are admitted in one place.
 * Entries are found by the key's hash, so the cache holds no secret.
 */
import { hashApiKey, type KeyIdentity } from "./keys";

export class KeyCache<K extends KeyIdentity = KeyIdentity> {
  private readonly entries = new Map<string, { key: K; until: number }>();
  /** Moves on every `clear`: an answer asked for before a change is not kept after it. */
  generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(secret: string): K | undefined {
    const hash = hashApiKey(secret);
    const e = this.entries.get(hash);
    if (!e) return undefined;
    if (e.until > this.now()) return e.key;
    this.entries.delete(hash);
    return undefined;
  }

  /** Keeps a confirmed key (asked for at `generation`), unless it has a rate limit or the keys changed since. */
  set(secret: string, key: K, generation = this.generation): void {
    if (key.limited || key.rateLimitRpm !== null || this.ttlMs <= 0 || generation !== this.generation) return;
    const expires = key.expiresAt ? Date.parse(key.expiresAt) : Infinity;
    const until = Math.min(this.now() + this.ttlMs, expires);
    if (until <= this.now()) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(hashApiKey(secret), { key, until });
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
