/** Hub searches kept a few minutes, the oldest dropped first (lib/models/search-cache.ts). */
import { SEARCH_CACHE_MAX, SEARCH_TTL_MS, SearchCache } from "../../../../lib/models/search-cache";

describe("SearchCache", () => {
  test("a search is answered from the cache until the TTL has passed", () => {
    const cache = new SearchCache<string>();
    cache.set("llama", "result", 1000);
    expect(cache.get("llama", 1000 + SEARCH_TTL_MS - 1)).toBe("result");
    expect(cache.get("llama", 1000 + SEARCH_TTL_MS)).toBeUndefined();
    expect(cache.get("qwen", 1000)).toBeUndefined();
  });

  test("bounded: past the maximum the oldest search goes; one stored again counts as new", () => {
    const cache = new SearchCache<number>(60_000, 3);
    cache.set("a", 1, 0);
    cache.set("b", 2, 0);
    cache.set("a", 10, 1); // a moves behind b
    cache.set("c", 3, 2);
    cache.set("d", 4, 3);
    expect(cache.size).toBe(3);
    expect(cache.get("b", 4)).toBeUndefined();
    expect([cache.get("a", 4), cache.get("c", 4), cache.get("d", 4)]).toEqual([10, 3, 4]);
  });

  test("the defaults: five minutes, two hundred searches", () => {
    expect(SEARCH_TTL_MS).toBe(5 * 60_000);
    expect(SEARCH_CACHE_MAX).toBe(200);
    const cache = new SearchCache<number>();
    for (let i = 0; i <= SEARCH_CACHE_MAX; i++) cache.set(`q${i}`, i, 0);
    expect(cache.size).toBe(SEARCH_CACHE_MAX);
    expect(cache.get("q0", 0)).toBeUndefined();
  });
});
