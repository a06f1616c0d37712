/**
 * Hub searches (`GET /api/models/available?search=`) kept for a few minutes,
 * at most a couple of hundred: the oldest search goes first (a Map keeps
 * insertion order, and a search stored again moves to the end).
 */
export const SEARCH_TTL_MS = 5 * 60_000;
export const SEARCH_CACHE_MAX = 200;

export class SearchCache<T> {
  private readonly entries = new Map<string, { at: number; result: T }>();

  constructor(
    private readonly ttlMs = SEARCH_TTL_MS,
    private readonly max = SEARCH_CACHE_MAX,
  ) {}

  /** The result stored for `query` less than the TTL ago; undefined otherwise. */
  get(query: string, now = Date.now()): T | undefined {
    const hit = this.entries.get(query);
    return hit && now - hit.at < this.ttlMs ? hit.result : undefined;
  }

  set(query: string, result: T, now = Date.now()): void {
    this.entries.delete(query);
    this.entries.set(query, { at: now, result });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}
