/**
 * Which loaded models a node unloads before another load (lib/inference/eviction.ts):
 * least recently used first, only as many as the count and the memory budget need,
 * never one that is busy, pinned or still loading/unloading.
 */
import { planEviction, type LoadedSlot, type Limits } from "../../../../lib/inference/eviction";

/** An idle, settled, unpinned model of `bytes`, last used at `lastUsedAt`. */
function slot(id: string, bytes: number, lastUsedAt: number, over: Partial<LoadedSlot> = {}): LoadedSlot {
  return { id, bytes, busy: false, pinned: false, settled: true, lastUsedAt, ...over };
}

const noLimits: Limits = { maxLoaded: null, budgetBytes: null };

describe("planEviction", () => {
  test("with no limits nothing is unloaded, however much is loaded", () => {
    const loaded = [slot("a", 1e12, 1), slot("b", 1e12, 2), slot("c", 1e12, 3)];
    expect(planEviction(loaded, 1e12, noLimits)).toEqual([]);
  });

  test("nothing loaded: a model within the budget fits as it is", () => {
    expect(planEviction([], 100, { maxLoaded: 1, budgetBytes: 100 })).toEqual([]);
  });

  test("fits without eviction when under both the count and the budget", () => {
    const loaded = [slot("a", 300, 1), slot("b", 300, 2)];
    expect(planEviction(loaded, 400, { maxLoaded: 3, budgetBytes: 1000 })).toEqual([]);
  });

  test("exactly at the count and the budget still fits (limits are inclusive)", () => {
    const loaded = [slot("a", 600, 1)];
    expect(planEviction(loaded, 400, { maxLoaded: 2, budgetBytes: 1000 })).toEqual([]);
  });

  test("count limit: unloads the least recently used, only as many as needed", () => {
    const loaded = [slot("new", 1, 300), slot("old", 1, 100), slot("mid", 1, 200)];
    expect(planEviction(loaded, 1, { maxLoaded: 3, budgetBytes: null })).toEqual(["old"]);
    expect(planEviction(loaded, 1, { maxLoaded: 2, budgetBytes: null })).toEqual(["old", "mid"]);
    expect(planEviction(loaded, 1, { maxLoaded: 1, budgetBytes: null })).toEqual(["old", "mid", "new"]);
  });

  test("a model never used (lastUsedAt 0) goes before any used one", () => {
    const loaded = [slot("used", 1, 5), slot("never", 1, 0)];
    expect(planEviction(loaded, 1, { maxLoaded: 2, budgetBytes: null })).toEqual(["never"]);
  });

  test("byte budget: unloads least recently used until the new model's bytes fit", () => {
    const loaded = [slot("a", 400, 1), slot("b", 300, 2), slot("c", 200, 3)];
    // used 900 of 1000: 150 more needs 50 freed → the oldest (a, 400) is enough
    expect(planEviction(loaded, 150, { maxLoaded: null, budgetBytes: 1000 })).toEqual(["a"]);
    // 800 more: needs 700 freed → a (400) + b (300)
    expect(planEviction(loaded, 800, { maxLoaded: null, budgetBytes: 1000 })).toEqual(["a", "b"]);
    // 801 more: needs 701 → all three
    expect(planEviction(loaded, 801, { maxLoaded: null, budgetBytes: 1000 })).toEqual(["a", "b", "c"]);
  });

  test("LRU order even when a bigger model would free room at once", () => {
    const loaded = [slot("small-old", 100, 1), slot("big-new", 900, 2)];
    // freeing small-old is not enough, so big-new follows; the order is by use, not size
    expect(planEviction(loaded, 500, { maxLoaded: null, budgetBytes: 1000 })).toEqual(["small-old", "big-new"]);
  });

  test("count and budget together: evicts until both hold", () => {
    const loaded = [slot("a", 100, 1), slot("b", 100, 2), slot("c", 700, 3)];
    // count: 3 loaded, max 3 → one must go (a). budget: 900 + 300 > 1000 → 200 must be freed: a + b
    expect(planEviction(loaded, 300, { maxLoaded: 3, budgetBytes: 1000 })).toEqual(["a", "b"]);
    // the budget alone needs nothing gone (900 + 100 <= 1000); the count (max 2) needs two gone
    expect(planEviction(loaded, 100, { maxLoaded: 2, budgetBytes: 1000 })).toEqual(["a", "b"]);
    // the count alone would need one gone; the budget needs c's 700 as well
    expect(planEviction(loaded, 800, { maxLoaded: 3, budgetBytes: 1000 })).toEqual(["a", "b", "c"]);
  });

  test("busy, pinned and unsettled models are never chosen, even when oldest", () => {
    const loaded = [
      slot("busy", 100, 1, { busy: true }),
      slot("pinned", 100, 2, { pinned: true }),
      slot("loading", 100, 3, { settled: false }),
      slot("idle", 100, 4),
    ];
    expect(planEviction(loaded, 100, { maxLoaded: 4, budgetBytes: null })).toEqual(["idle"]);
    expect(planEviction(loaded, 100, { maxLoaded: null, budgetBytes: 400 })).toEqual(["idle"]);
  });

  test("models that cannot go still count against the limits", () => {
    // the unsettled one's bytes and slot count: with it, 100 + 100 + 100 > 250
    const loaded = [slot("unloading", 100, 1, { settled: false }), slot("idle", 100, 2)];
    expect(planEviction(loaded, 100, { maxLoaded: null, budgetBytes: 250 })).toEqual(["idle"]);
    expect(planEviction(loaded, 100, { maxLoaded: 2, budgetBytes: null })).toEqual(["idle"]);
  });

  test("larger than the budget: null, even with nothing loaded", () => {
    expect(planEviction([], 1001, { maxLoaded: null, budgetBytes: 1000 })).toBeNull();
    expect(planEviction([slot("a", 10, 1)], 1001, { maxLoaded: 5, budgetBytes: 1000 })).toBeNull();
  });

  test("not enough evictable: null (and not a partial plan)", () => {
    const loaded = [slot("busy", 600, 1, { busy: true }), slot("idle", 200, 2)];
    // 600 is held for good: 600 + 500 > 1000 however much else goes
    expect(planEviction(loaded, 500, { maxLoaded: null, budgetBytes: 1000 })).toBeNull();
    // count: both pinned, max 2
    const pinned = [slot("p1", 1, 1, { pinned: true }), slot("p2", 1, 2, { pinned: true })];
    expect(planEviction(pinned, 1, { maxLoaded: 2, budgetBytes: null })).toBeNull();
    // all loading
    const loading = [slot("l1", 1, 1, { settled: false })];
    expect(planEviction(loading, 1, { maxLoaded: 1, budgetBytes: null })).toBeNull();
  });

  test("ties in lastUsedAt go by id", () => {
    const loaded = [slot("c", 1, 7), slot("a", 1, 7), slot("b", 1, 7)];
    expect(planEviction(loaded, 1, { maxLoaded: 2, budgetBytes: null })).toEqual(["a", "b"]);
    // and the order of the input does not matter
    expect(planEviction([...loaded].reverse(), 1, { maxLoaded: 2, budgetBytes: null })).toEqual(["a", "b"]);
  });

  test("does not modify its input", () => {
    const loaded = [slot("b", 1, 2), slot("a", 1, 1)];
    const copy = loaded.map((s) => ({ ...s }));
    planEviction(loaded, 1, { maxLoaded: 1, budgetBytes: null });
    expect(loaded).toEqual(copy);
  });
});
