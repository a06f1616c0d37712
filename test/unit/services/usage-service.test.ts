/**
 * The usage service beside the history service in local brokers: records
 * written to history are counted in the daily roll-ups, once; what history
 * writes as the broker stops is counted too (NeDB files, read again after a
 * restart); on PostgreSQL a record written twice (a redelivery) is counted
 * once, and routers adding to the same rows at once each add theirs.
 */
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { Sequelize } from "sequelize";
import { openDatabase, releaseDatabase } from "../../../lib/db/postgres";
import type { HistoryRecord } from "../../../lib/history/record";
import { PgUsageStore } from "../../../lib/usage/pg-store";
import HistoryService from "../../../services/history.service";
import UsageService from "../../../services/usage.service";
import { bucketOf, rollUp, summarize, type UsageReport } from "../../../lib/usage/rollup";
import { historyRecord } from "../../helpers/history";
import { createTestDatabase, type TestDatabase } from "../../helpers/postgres";
import { tempDir } from "../../helpers/procs";
import { waitFor } from "../../helpers/wait";

const T0 = Date.UTC(2026, 2, 1, 10);
const DAY = 86_400_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function start(): Promise<ServiceBroker> {
  const b = new ServiceBroker({ logger: false, nodeID: `usage-${Math.random().toString(36).slice(2)}` });
  // the services read their settings (the environment) when created
  for (const s of [HistoryService, UsageService]) b.createService(s as unknown as ServiceSchema);
  await b.start();
  return b;
}

const report = (b: ServiceBroker, params: object) => b.call<UsageReport, object>("usage.report", params);

/** Writes what history holds, then the usage summed from it, until the report has `requests` in all. */
async function settled(b: ServiceBroker, requests: number, params: object = {}): Promise<UsageReport> {
  const range = { group_by: "key", from: "2026-01-01", to: "2026-12-31", ...params };
  return waitFor(
    async () => {
      await b.call("history.flush");
      await b.call("usage.flush");
      const r = await report(b, range);
      return r.rows.reduce((a, row) => a + row.requests, 0) === requests ? r : null;
    },
    { what: `${requests} requests counted` },
  );
}

function records(): HistoryRecord[] {
  return [
    historyRecord("a1", T0, { api_key_id: "k1", user_id: "u1", tokens_in: 5, tokens_out: 7, duration_ms: 12 }),
    historyRecord("a2", T0 + 1000, { api_key_id: "k1", user_id: "u1", status: 500, duration_ms: 40 }),
    historyRecord("b1", T0 + DAY, { api_key_id: "k2", user_id: "u2", model: "other", tokens_out: 30 }),
    historyRecord("c1", T0 + 2 * DAY, { api_key_id: null, user_id: null, node_id: "n2", duration_ms: 900 }),
  ];
}

afterEach(() => {
  delete process.env.LLM_ROUTER_DATABASE_URL;
});

describe("on the embedded store", () => {
  test("written records are counted per key, model and day; a viewer's report holds only their keys'", async () => {
    process.env.LLM_ROUTER_DATA_DIR = ":memory:";
    const b = await start();
    try {
      for (const rec of records()) b.emit("history.record", rec);
      const byKey = await settled(b, 4);
      expect(byKey.rows).toEqual(summarize(rollUp(records()), "key"));
      expect(byKey.rows.map((r) => [r.group, r.requests, r.errors, r.tokens_in, r.tokens_out])).toEqual([
        ["k1", 2, 1, 6, 8],
        ["k2", 1, 0, 1, 30],
        [null, 1, 0, 1, 1],
      ]);
      const days = await report(b, { group_by: "day", from: "2026-03-02", to: "2026-03-03" });
      expect(days).toMatchObject({ group_by: "day", from: "2026-03-02", to: "2026-03-03" });
      expect(days.rows.map((r) => [r.group, r.requests])).toEqual([
        ["2026-03-02", 1],
        ["2026-03-03", 1],
      ]);
      const mine = await report(b, { group_by: "model", from: "2026-03-01", to: "2026-03-31", user_id: "u1" });
      expect(mine.rows).toEqual([expect.objectContaining({ group: "m", requests: 2, errors: 1 })]);
      await expect(report(b, { group_by: "team", from: "2026-03-01", to: "2026-03-31" })).rejects.toMatchObject({
        data: [expect.objectContaining({ field: "group_by" })],
      });
    } finally {
      await b.stop();
    }
  });

  test("records history writes as the broker stops are counted before usage stops (read after a restart)", async () => {
    process.env.LLM_ROUTER_DATA_DIR = tempDir("usage-nedb");
    const first = await start();
    for (const rec of records()) first.emit("history.record", rec);
    // no flush: history writes them on stop, and the usage service adds them before it stops
    await first.stop();
    const again = await start();
    try {
      const r = await settled(again, 4, { group_by: "day" });
      expect(r.rows.map((row) => [row.group, row.requests])).toEqual([
        ["2026-03-01", 2],
        ["2026-03-02", 1],
        ["2026-03-03", 1],
      ]);
      // more of the same day add to its stored row
      again.emit("history.record", historyRecord("a3", T0 + 5000, { api_key_id: "k1", user_id: "u1" }));
      const more = await settled(again, 5, { group_by: "day" });
      expect(more.rows[0]).toMatchObject({ group: "2026-03-01", requests: 3 });
    } finally {
      await again.stop();
    }
  });
});

describe("on PostgreSQL", () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  test("a record written twice (as the stream redelivers one) is counted once", async () => {
    process.env.LLM_ROUTER_DATABASE_URL = tdb.url;
    process.env.LLM_ROUTER_DATA_DIR = ":memory:";
    const b = await start();
    try {
      for (const rec of records()) b.emit("history.record", rec);
      await settled(b, 4);
      // the same ids again, in another batch: history keeps its rows, usage its counts
      for (const rec of records()) b.emit("history.record", rec);
      b.emit("history.record", historyRecord("d1", T0, { api_key_id: "k1", user_id: "u1", duration_ms: 3 }));
      const r = await settled(b, 5);
      expect(r.rows.map((row) => [row.group, row.requests])).toEqual([
        ["k1", 3],
        ["k2", 1],
        [null, 1],
      ]);
      const all = [...records(), historyRecord("d1", T0, { api_key_id: "k1", user_id: "u1", duration_ms: 3 })];
      expect(r.rows).toEqual(summarize(rollUp(all), "key"));
    } finally {
      await b.stop();
    }
  });

  test("routers adding to the same rows at once each add theirs, histograms merged", async () => {
    const db = await openDatabase(tdb.url);
    await db.query("TRUNCATE usage_daily");
    const pools = [0, 1, 2, 3].map(() => new Sequelize(tdb.url, { logging: false, pool: { max: 4 } }));
    try {
      const stores = pools.map((p) => new PgUsageStore(p, quiet));
      const batch = (i: number) =>
        Array.from({ length: 40 }, (_, j) =>
          historyRecord(`r${i}-${j}`, T0 + (j % 3) * DAY, {
            api_key_id: `k${j % 4}`,
            user_id: "u\u0000x",
            model: j % 2 ? "a" : "b",
            duration_ms: 1 + ((i * 40 + j) % 97) * 13,
            tokens_out: j,
          }),
        );
      const all = Array.from({ length: 24 }, (_, i) => batch(i));
      await Promise.all(all.map((recs, i) => stores[i % stores.length].add(rollUp(recs))));
      const stored = await stores[0].rows({ from: "2026-03-01", to: "2026-03-31" });
      const flat = all.flat();
      expect(summarize(stored, "key")).toEqual(summarize(rollUp(flat), "key"));
      expect(summarize(stored, "day")).toEqual(summarize(rollUp(flat), "day"));
      const hist: Record<string, number> = {};
      for (const row of stored) for (const [k, n] of Object.entries(row.latency_hist)) hist[k] = (hist[k] ?? 0) + n;
      const expected: Record<string, number> = {};
      for (const r of flat) expected[bucketOf(r.duration_ms)] = (expected[bucketOf(r.duration_ms)] ?? 0) + 1;
      expect(hist).toEqual(expected);
      // a NUL in a text column is kept as U+FFFD (PostgreSQL refuses it in text)
      expect(stored[0].user_id).toBe("u\uFFFDx");
      expect(await stores[0].rows({ from: "2026-03-01", to: "2026-03-31", userId: "nobody" })).toEqual([]);
      expect(await stores[0].rows({ from: "2026-03-02", to: "2026-03-02", userId: "u\u0000x" })).toHaveLength(4);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      await releaseDatabase(tdb.url);
    }
  });
});
