/**
 * Usage roll-ups (lib/usage/rollup.ts): rows keyed by UTC day, key, user,
 * model and node; summing records one at a time equals the roll-up of all of
 * them however they are split and merged; summaries per group, sorted; the
 * median read from the histogram within a bucket of the true one.
 */
import {
  addRecord,
  bucketOf,
  BUCKETS,
  bucketValue,
  dayOf,
  isUsageRow,
  medianOf,
  mergeRows,
  rollUp,
  rowId,
  summarize,
  type UsageRow,
  type UsageRows,
  type UsageSample,
} from "../../../../lib/usage/rollup";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 2, 1, 12);

/** A deterministic pseudo-random sequence (a test must not depend on Math.random's luck). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function sample(over: Partial<UsageSample> = {}): UsageSample {
  return {
    ts: T0,
    api_key_id: "k1",
    user_id: "u1",
    model: "m",
    node_id: "n",
    status: 200,
    duration_ms: 10,
    tokens_in: 3,
    tokens_out: 5,
    ...over,
  };
}

function records(n: number, seed = 1): UsageSample[] {
  const r = random(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  return Array.from({ length: n }, () =>
    sample({
      ts: T0 + Math.floor(r() * 3 * DAY),
      api_key_id: pick(["k1", "k2", null]),
      user_id: pick(["u1", "u2"]),
      model: pick(["a", "b", null]),
      node_id: pick(["n1", "n2"]),
      status: pick([200, 200, 200, 429, 500]),
      duration_ms: 0.2 + r() * 5000,
      tokens_in: pick([null, 0, 7, 12]),
      tokens_out: Math.floor(r() * 100),
    }),
  );
}

const sorted = (rows: Iterable<UsageRow>, rounded = false) =>
  [...rows]
    .sort((a, b) => (rowId(a) < rowId(b) ? -1 : 1))
    .map((r) => (rounded ? { ...r, duration_ms_sum: Math.round(r.duration_ms_sum * 1e6) / 1e6 } : r));

describe("rows", () => {
  test("a record counts in its UTC day's row of key, user, model and node", () => {
    const rows: UsageRows = new Map();
    addRecord(rows, sample({ ts: Date.UTC(2026, 2, 1, 23, 59, 59, 999), status: 404, duration_ms: 1.5 }));
    addRecord(rows, sample({ ts: Date.UTC(2026, 2, 1, 0, 0), tokens_in: null, tokens_out: null, duration_ms: 3 }));
    addRecord(rows, sample({ ts: Date.UTC(2026, 2, 2, 0, 0) }));
    addRecord(rows, sample({ api_key_id: null, user_id: null, model: null, node_id: null }));
    expect(rows.size).toBe(3);
    const first = rows.get(rowId({ day: "2026-03-01", api_key_id: "k1", user_id: "u1", model: "m", node_id: "n" }));
    expect(first).toEqual({
      day: "2026-03-01",
      api_key_id: "k1",
      user_id: "u1",
      model: "m",
      node_id: "n",
      requests: 2,
      errors: 1,
      tokens_in: 3,
      tokens_out: 5,
      duration_ms_sum: 4.5,
      latency_hist: { [bucketOf(1.5)]: 1, [bucketOf(3)]: 1 },
    });
    expect(
      rows.get(rowId({ day: "2026-03-01", api_key_id: null, user_id: null, model: null, node_id: null })),
    ).toMatchObject({ requests: 1, errors: 0 });
    expect(dayOf(Date.UTC(2026, 2, 2))).toBe("2026-03-02");
  });

  test("a record without a time of the years 0000 to 9999 is not counted", () => {
    const rows: UsageRows = new Map();
    for (const ts of [Number.NaN, 1e20, Date.UTC(10000, 0, 1), Date.UTC(-1, 0, 1), undefined as unknown as number]) {
      expect(addRecord(rows, sample({ ts }))).toBeNull();
    }
    expect(rows.size).toBe(0);
    expect(rollUp([sample({ ts: Number.NaN }), sample()])).toHaveLength(1);
  });

  test("summing record by record equals the roll-up, however split and merged", () => {
    const recs = records(2000);
    const all = rollUp(recs);
    // the same records in three parts, rolled up apart and merged (as flushes and routers do)
    const parts = [recs.slice(0, 500), recs.slice(500, 1300), recs.slice(1300)].map(rollUp);
    const merged = mergeRows(new Map(), parts.flat());
    // (durations summed in another order may differ in the last bits)
    expect(sorted(merged.values(), true)).toEqual(sorted(all, true));
    // and each row's sums are the sums over its records
    for (const row of all) {
      const mine = recs.filter((r) => rowId(row) === rowId({ day: dayOf(r.ts)!, ...keyOf(r) }));
      expect(row.requests).toBe(mine.length);
      expect(row.errors).toBe(mine.filter((r) => r.status >= 400).length);
      expect(row.tokens_in).toBe(mine.reduce((a, r) => a + (r.tokens_in ?? 0), 0));
      expect(row.tokens_out).toBe(mine.reduce((a, r) => a + (r.tokens_out ?? 0), 0));
      expect(row.duration_ms_sum).toBeCloseTo(
        mine.reduce((a, r) => a + r.duration_ms, 0),
        6,
      );
      expect(Object.values(row.latency_hist).reduce((a, n) => a + n, 0)).toBe(mine.length);
    }
    expect(all.reduce((a, r) => a + r.requests, 0)).toBe(recs.length);
  });

  test("merging never changes the rows merged in", () => {
    const part = rollUp(records(50));
    const copy = JSON.parse(JSON.stringify(part));
    const into = mergeRows(new Map(), part);
    mergeRows(into, part);
    expect(part).toEqual(copy);
    expect([...into.values()].reduce((a, r) => a + r.requests, 0)).toBe(100);
  });
});

function keyOf(r: UsageSample) {
  return { api_key_id: r.api_key_id, user_id: r.user_id, model: r.model, node_id: r.node_id };
}

describe("latency histogram", () => {
  test("buckets are log-scale, √2 wide, from under 1 ms to 2^19 ms and over", () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(0.99)).toBe(0);
    expect(bucketOf(-5)).toBe(0);
    expect(bucketOf(Number.NaN)).toBe(0);
    expect(bucketOf(1)).toBe(1);
    expect(bucketOf(1.41)).toBe(1);
    expect(bucketOf(1.42)).toBe(2);
    expect(bucketOf(2)).toBe(3);
    expect(bucketOf(1000)).toBe(20);
    expect(bucketOf(2 ** 19)).toBe(BUCKETS - 1);
    expect(bucketOf(1e12)).toBe(BUCKETS - 1);
    for (let b = 0; b < BUCKETS; b++) expect(bucketOf(bucketValue(b))).toBe(b);
  });

  test("the median read from it is within a bucket of the true median", () => {
    const r = random(7);
    const shapes: Array<() => number> = [
      () => 1 + r() * 100,
      () => Math.exp(r() * 12),
      () => (r() < 0.5 ? 5 + r() : 3000 + r() * 100),
      () => r() * 0.9,
      () => 2 ** (18 + r() * 3),
    ];
    for (const shape of shapes) {
      for (const n of [1, 2, 3, 10, 101, 1000]) {
        const ds = Array.from({ length: n }, shape);
        const hist: Record<string, number> = {};
        for (const d of ds) hist[bucketOf(d)] = (hist[bucketOf(d)] ?? 0) + 1;
        const s = [...ds].sort((a, b) => a - b);
        const truth = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        const median = medianOf(hist)!;
        expect(Math.abs(bucketOf(median) - bucketOf(truth))).toBeLessThanOrEqual(1);
      }
    }
    expect(medianOf({})).toBeNull();
    expect(medianOf({ 20: 1 })).toBe(bucketValue(20));
  });
});

describe("summaries", () => {
  test("per key, user, model, node or day: the groups' sums, sorted, no group missing", () => {
    const recs = records(600, 3);
    const rows = rollUp(recs);
    const fields = { key: "api_key_id", user: "user_id", model: "model", node: "node_id" } as const;
    for (const [by, field] of Object.entries(fields)) {
      const out = summarize(rows, by as keyof typeof fields);
      const groups = [...new Set(recs.map((r) => r[field]))];
      expect(out.map((s) => s.group)).toEqual([
        ...groups.filter((g): g is string => g !== null).sort(),
        ...(groups.includes(null) ? [null] : []),
      ]);
      for (const s of out) {
        const mine = recs.filter((r) => r[field] === s.group);
        expect(s).toEqual({
          group: s.group,
          requests: mine.length,
          errors: mine.filter((r) => r.status >= 400).length,
          tokens_in: mine.reduce((a, r) => a + (r.tokens_in ?? 0), 0),
          tokens_out: mine.reduce((a, r) => a + (r.tokens_out ?? 0), 0),
          median_latency_ms: expect.any(Number),
        });
      }
    }
    const days = summarize(rows, "day");
    expect(days.map((d) => d.group)).toEqual(
      ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"].slice(0, days.length),
    );
    expect(days.reduce((a, d) => a + d.requests, 0)).toBe(600);
    expect(summarize([], "key")).toEqual([]);
  });

  test("the median is rounded to 0.1 ms", () => {
    const [s] = summarize(rollUp([sample({ duration_ms: 100 })]), "model");
    expect(s.median_latency_ms).toBe(Math.round(bucketValue(bucketOf(100)) * 10) / 10);
  });
});

describe("rows from another process", () => {
  test("a row is checked field by field", () => {
    const [row] = rollUp([sample()]);
    expect(isUsageRow(row)).toBe(true);
    expect(isUsageRow(JSON.parse(JSON.stringify(row)))).toBe(true);
    for (const bad of [
      null,
      "row",
      { ...row, day: "2026-3-1" },
      { ...row, model: 5 },
      { ...row, requests: -1 },
      { ...row, tokens_in: "3" },
      { ...row, latency_hist: [1] },
      { ...row, latency_hist: { 40: 1 } },
      { ...row, latency_hist: { x: 1 } },
      { ...row, latency_hist: { 3: Number.POSITIVE_INFINITY } },
    ]) {
      expect(isUsageRow(bad)).toBe(false);
    }
  });
});
