/**
 * The embedded store's in-memory index: filters with the store query's
 * semantics, newest-first pages and totals, keyset paging, the hour window,
 * retention and the cap; and the trigram signatures behind the text search.
 */
import { needleBits, SigPool } from "../../../../lib/history/ngram";
import { parseFilter, searchText } from "../../../../lib/history/query";
import type { HistoryRecord } from "../../../../lib/history/record";
import { entryOf, HistoryIndex, type StoredDoc } from "../../../../lib/history/record-index";

const T0 = Date.parse("2026-11-28T00:00:00Z");
const MODELS = ["m-a", "m-b", "m-c"];
const NODES = ["n1", "n2"];
const KINDS: HistoryRecord["kind"][] = ["chat", "completion", "embedding"];
const STATUSES = [200, 200, 200, 404, 503];

/** Record i: ts one second apart (two share each second from i = 40 on), fields cycling. */
function doc(i: number): StoredDoc {
  const request_body = { prompt: `prompt ${i} ${i % 7 === 0 ? "Needle.*" : "hay"}` };
  const response_body = i % 2 ? { text: `answer ${i}` } : null;
  return {
    _id: `_${i}`,
    id: `req-${String(i).padStart(3, "0")}`,
    ts: T0 + (i < 40 ? i : 40 + Math.floor((i - 40) / 2)) * 1000,
    model: i % 11 === 0 ? null : MODELS[i % 3],
    node_id: NODES[i % 2],
    kind: KINDS[i % 3],
    status: STATUSES[i % 5],
    duration_ms: i,
    ttft_ms: i % 4 ? i / 2 : null,
    tokens_out: i % 5 < 3 ? 10 : null,
    request_body,
    response_body,
    search_text: searchText(request_body, response_body),
  };
}

const N = 120;
const DOCS = Array.from({ length: N }, (_, i) => doc(i));

/** What the store query would select, newest first by (ts, id): the reference the index must agree with. */
function reference(query: Record<string, unknown>): string[] {
  const f = parseFilter(query);
  const q = f.q?.toLowerCase();
  return DOCS.filter(
    (d) =>
      (!f.model || d.model === f.model) &&
      (!f.node || d.node_id === f.node) &&
      (!f.kind || d.kind === f.kind) &&
      (f.status === undefined ||
        (f.status === "success" ? d.status < 400 : f.status === "error" ? d.status >= 400 : d.status === f.status)) &&
      (f.from === undefined || d.ts >= f.from) &&
      (f.to === undefined || d.ts <= f.to) &&
      (!q || d.search_text!.includes(q)),
  )
    .sort((a, b) => b.ts - a.ts || (a.id < b.id ? 1 : -1))
    .map((d) => d.id);
}

/** An index of DOCS, loaded in a shuffled order or added one chunk at a time (out of order too). */
function build(how: "load" | "add"): HistoryIndex {
  const idx = new HistoryIndex();
  const shuffled = [...DOCS].sort((a, b) => ((a.duration_ms * 37) % N) - ((b.duration_ms * 37) % N));
  if (how === "load") {
    idx.load(shuffled);
    // signatures half done: the search must not depend on them
    idx.signSome(N / 2);
  } else {
    for (let i = 0; i < N; i += 8) {
      idx.add(shuffled.slice(i, i + 8).map(entryOf));
      // some signed, some not: the search must not depend on them
      if (i % 16 === 0) idx.signSome(4);
    }
  }
  return idx;
}

const iso = (t: number) => new Date(t).toISOString();

describe.each(["load", "add"] as const)("the index (%s)", (how) => {
  const idx = build(how);

  test.each([
    {},
    { model: "m-a" },
    { model: "m-b", status: "error" },
    { node: "n2", kind: "chat" },
    { status: "success" },
    { status: "503" },
    { from: iso(T0 + 30_000), to: iso(T0 + 50_000) },
    { to: iso(T0 + 10_000) },
    { from: iso(T0 + 70_000) },
    { q: "needle.*" },
    { q: "NEEDLE" },
    { q: "answer 1" },
    { q: "ne" },
    { q: "no such text" },
    { q: '"prompt":"prompt 7' },
    { model: "m-a", from: iso(T0 + 20_000), q: "hay" },
  ])("selects what the store query selects: %j", (query) => {
    const want = reference(query);
    const f = parseFilter(query);
    const all = idx.select(f, 0, 1000);
    expect(all.total).toBe(want.length);
    expect(all.entries.map((e) => e.id)).toEqual(want);
    // pages of 7, newest first, with the same total
    for (let offset = 0; offset < want.length + 7; offset += 7) {
      const page = idx.select(f, offset, 7);
      expect(page.total).toBe(want.length);
      expect(page.entries.map((e) => e.id)).toEqual(want.slice(offset, offset + 7));
    }
  });

  test("keyset pages walk every match once, in order", () => {
    for (const query of [{}, { model: "m-c" }, { q: "hay", from: iso(T0 + 5000) }]) {
      const f = parseFilter(query);
      const seen: string[] = [];
      let cursor: { ts: number; id: string } | undefined;
      for (;;) {
        const page = idx.after(f, cursor, 5);
        seen.push(...page.map((e) => e.id));
        if (page.length < 5) break;
        cursor = page[page.length - 1];
      }
      expect(seen).toEqual(reference(query));
    }
  });

  test("lookup by record id, the entries since a time, and the size", () => {
    expect(idx.size).toBe(N);
    expect(idx.get("req-005")).toMatchObject({ _id: "_5", ts: T0 + 5000, status: 200 });
    expect(idx.get("req-nope")).toBeUndefined();
    const since = idx.since(T0 + 100_000);
    expect(since.map((e) => e.ts)).toEqual([...since.map((e) => e.ts)].sort((a, b) => a - b));
    expect(since.length).toBe(DOCS.filter((d) => d.ts >= T0 + 100_000).length);
  });
});

test("names read from a file (separate string copies) match filters built at run time", () => {
  const idx = new HistoryIndex();
  idx.load(DOCS.map((d) => JSON.parse(JSON.stringify(d)) as StoredDoc));
  const f = parseFilter({ model: ["m", "-b"].join(""), node: `n${1 + 1}`, kind: "chat" });
  expect(idx.select(f, 0, 1000).entries.map((e) => e.id)).toEqual(
    reference({ model: "m-b", node: "n2", kind: "chat" }),
  );
  expect(idx.select(parseFilter({ model: "never-seen" }), 0, 10).total).toBe(0);
});

describe("dropping entries", () => {
  test("retention drops those older than the cutoff; the cap drops the oldest", () => {
    const idx = build("add");
    const cutoff = T0 + 20_000;
    const expired = idx.dropBefore(cutoff);
    expect(expired.map((e) => e.id).sort()).toEqual(DOCS.filter((d) => d.ts < cutoff).map((d) => d.id));
    expect(idx.size).toBe(N - 20);
    expect(idx.get("req-003")).toBeUndefined();
    expect(idx.select(parseFilter({}), 0, 1000).entries.every((e) => e.ts >= cutoff)).toBe(true);

    const capped = idx.dropOldest(idx.size - 50);
    expect(capped).toHaveLength(N - 20 - 50);
    expect(idx.size).toBe(50);
    const left = idx.select(parseFilter({}), 0, 1000).entries.map((e) => e.id);
    expect(left).toEqual(reference({}).slice(0, 50));
    expect(idx.select(parseFilter({ q: "needle" }), 0, 1000).total).toBe(
      reference({ q: "needle" }).filter((id) => left.includes(id)).length,
    );
    // added entries are signed later (after a search); the dropped entries' signature slots are reused by later ones
    expect(idx.sigs.used).toBeLessThan(50);
    expect(idx.signSome(Infinity)).toBe(0);
    expect(idx.sigs.used).toBe(50);
    idx.add([entryOf({ ...doc(200), ts: T0 + 1_000_000 })]);
    expect(idx.sigs.used).toBe(50);
    expect(idx.signSome(Infinity)).toBe(0);
    expect(idx.sigs.used).toBe(51);
    expect(idx.select(parseFilter({}), 0, 1).entries[0].id).toBe("req-200");
    expect(idx.dropOldest(-3)).toEqual([]);
    expect(idx.dropOldest(1000)).toHaveLength(51);
    expect(idx.size).toBe(0);
    expect(idx.select(parseFilter({ model: "m-a" }), 0, 10)).toEqual({ entries: [], total: 0 });
  });

  test("many drops from the old end keep positions right (the list is compacted)", () => {
    const idx = new HistoryIndex();
    const many = Array.from({ length: 5000 }, (_, i) => ({ ...doc(i % N), id: `r${i}`, _id: `x${i}`, ts: T0 + i }));
    idx.add(many.map(entryOf));
    for (let k = 0; k < 9; k++) idx.dropOldest(500);
    expect(idx.size).toBe(500);
    expect(idx.select(parseFilter({}), 0, 2).entries.map((e) => e.id)).toEqual(["r4999", "r4998"]);
    expect(idx.since(0)[0].id).toBe("r4500");
  });
});

describe("trigram signatures", () => {
  test("never rule out a text that holds the needle", () => {
    const pool = new SigPool();
    const texts = ["the quick brown fox", '{"a":"needle-42 here"}', "ümlaut and ß", "ab"];
    const slots = texts.map((t) => pool.add(t));
    for (const [i, t] of texts.entries()) {
      for (let a = 0; a < t.length; a++) {
        for (let b = a + 1; b <= t.length; b++) expect(pool.mayHold(slots[i], needleBits(t.slice(a, b)))).toBe(true);
      }
    }
    expect(needleBits("ab")).toBeNull();
    expect(pool.mayHold(slots[0], needleBits("zzzzzzzz"))).toBe(false);
  });

  test("grow past the first allocation and reuse released slots", () => {
    const pool = new SigPool();
    const slots = Array.from({ length: 3000 }, (_, i) => pool.add(`text number ${i}`));
    expect(pool.used).toBe(3000);
    expect(pool.mayHold(slots[2999], needleBits("number 2999"))).toBe(true);
    pool.release(slots[10]);
    expect(pool.add("something else")).toBe(slots[10]);
    expect(pool.mayHold(slots[10], needleBits("number 10"))).toBe(false);
    expect(pool.used).toBe(3000);
  });
});
