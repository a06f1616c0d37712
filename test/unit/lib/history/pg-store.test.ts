/**
 * The PostgreSQL history store on a real server (a database of this file's
 * own, migrated by openDatabase): idempotent writes, every filter alone and
 * together, `q` as literal text in any case, pages and their totals, keyset
 * pages, one record, stats and retention.
 */
import { QueryTypes, type Sequelize } from "sequelize";
import { openDatabase, releaseDatabase } from "../../../../lib/db/postgres";
import { PgHistoryStore, likeLiteral, whereOf } from "../../../../lib/history/pg-store";
import type { HistoryRecord } from "../../../../lib/history/record";
import { hourStats } from "../../../../lib/history/stats";
import type { Doc, StoreFilter } from "../../../../lib/history/store";
import { createTestDatabase, type TestDatabase } from "../../../helpers/postgres";

const DAY = 86_400_000;
const NOW = Date.parse("2026-11-28T12:00:30Z");
const log = { info: jest.fn(), warn: jest.fn(), error: jest.fn() };

let tdb: TestDatabase;
let db: Sequelize;
let store: PgHistoryStore;

/** A record as the api sends it (bodies as JSON text). */
function doc(id: string, ts: number, over: Partial<HistoryRecord> = {}): Doc {
  const { request_body = { prompt: `hello ${id}` }, response_body = null, ...rest } = over;
  return {
    id,
    ts,
    started_at: new Date(ts).toISOString(),
    finished_at: new Date(ts + 12).toISOString(),
    endpoint: "/v1/chat/completions",
    kind: "chat",
    stream: false,
    model: "m-a",
    node_id: "n1",
    node_name: "node one",
    client_ip: "127.0.0.1",
    api_key_id: "k1",
    api_key_name: "key",
    user_id: "u1",
    status: 200,
    error: null,
    duration_ms: 12.5,
    ttft_ms: 3.25,
    tokens_in: 7,
    tokens_out: 11,
    retries: 0,
    nodes_tried: ["n1"],
    ...rest,
    request_json: JSON.stringify(request_body),
    response_json: JSON.stringify(response_body),
  };
}

/** What the store should give back for a doc. */
function view(d: Doc): HistoryRecord {
  const { request_json, response_json, ...rest } = d;
  return { ...rest, request_body: JSON.parse(request_json!), response_body: JSON.parse(response_json!) };
}

/** The fixture: filters, text search and ordering each have something to tell apart. */
const FIXTURE: Doc[] = [
  doc("a", NOW - 50_000, { request_body: { prompt: "Hello World" } }),
  doc("b", NOW - 40_000, {
    model: "m-b",
    node_id: "n2",
    kind: "embedding",
    status: 500,
    error: "boom",
    request_body: { prompt: "100% sure" },
    response_body: { error: "upstream" },
  }),
  doc("c", NOW - 30_000, { node_id: "n2", status: 404, request_body: { prompt: "snake_case name" } }),
  doc("d", NOW - 20_000, {
    model: "m-b",
    kind: "responses",
    status: 201,
    request_body: { prompt: "plain" },
    response_body: { text: "ÜMLAUT and C:\\dir" },
    dropped_tools: ["web_search"],
  }),
  doc("e", NOW - 10_000, {
    model: null,
    node_id: null,
    node_name: null,
    api_key_id: null,
    api_key_name: null,
    user_id: null,
    kind: "cloud",
    stream: true,
    ttft_ms: null,
    tokens_in: null,
    tokens_out: null,
    retries: 2,
    nodes_tried: ["n1", "n2", "n3"],
    request_body: { prompt: "percent sign absent" },
  }),
];

async function ids(filter: StoreFilter, offset = 0, limit = 100): Promise<string[]> {
  return (await store.list(filter, offset, limit)).records.map((r) => r.id);
}

async function count(): Promise<number> {
  const [row] = await db.query<{ n: string }>("SELECT count(*) AS n FROM history", { type: QueryTypes.SELECT });
  return Number(row.n);
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  store = await PgHistoryStore.open(tdb.url, { history: { retentionDays: 7, maxRecords: 3 }, log });
  // the same shared instance, for direct checks
  db = await openDatabase(tdb.url);
});

afterAll(async () => {
  await store?.close();
  if (tdb) await releaseDatabase(tdb.url);
  await tdb?.drop();
});

beforeEach(async () => {
  await db.query("TRUNCATE history");
  log.error.mockClear();
});

test("records round-trip as the other stores give them, and a redelivered record is never doubled", async () => {
  await store.insert(FIXTURE.map((d) => ({ ...d })));
  expect(await count()).toBe(5);
  for (const d of FIXTURE) expect(await store.get(d.id)).toStrictEqual(view(d));
  const e = await store.get("e");
  expect(typeof e!.ts).toBe("number");
  expect(e).not.toHaveProperty("dropped_tools");
  expect((await store.get("d"))!.dropped_tools).toEqual(["web_search"]);
  expect(await store.get("nope")).toBeNull();

  // again, changed, and twice in one batch: the stored record stays as it was
  await store.insert([{ ...FIXTURE[0], status: 599 }, doc("f", NOW), doc("f", NOW, { status: 418 })]);
  expect(await count()).toBe(6);
  expect((await store.get("a"))!.status).toBe(200);
  expect((await store.get("f"))!.status).toBe(200);
  expect(log.error).not.toHaveBeenCalled();
});

test("each filter alone, and together", async () => {
  await store.insert(FIXTURE.map((d) => ({ ...d })));
  expect(await ids({})).toEqual(["e", "d", "c", "b", "a"]);
  expect(await ids({ model: "m-b" })).toEqual(["d", "b"]);
  expect(await ids({ node: "n2" })).toEqual(["c", "b"]);
  expect(await ids({ kind: "chat" })).toEqual(["c", "a"]);
  expect(await ids({ status: 404 })).toEqual(["c"]);
  expect(await ids({ status: "success" })).toEqual(["e", "d", "a"]);
  expect(await ids({ status: "error" })).toEqual(["c", "b"]);
  expect(await ids({ from: NOW - 30_000 })).toEqual(["e", "d", "c"]);
  expect(await ids({ to: NOW - 30_000 })).toEqual(["c", "b", "a"]);
  expect(await ids({ q: "hello" })).toEqual(["a"]);

  expect(await ids({ model: "m-a", status: "error" })).toEqual(["c"]);
  expect(await ids({ node: "n2", from: NOW - 45_000, to: NOW - 35_000 })).toEqual(["b"]);
  expect(await ids({ model: "m-b", kind: "responses", status: "success", q: "umlaut" })).toEqual([]);
  expect(await ids({ model: "m-b", kind: "responses", status: "success", q: "ümlaut" })).toEqual(["d"]);
  expect(await ids({ kind: "cloud", q: "PERCENT" })).toEqual(["e"]);
  expect(await ids({ model: "nope" })).toEqual([]);
  // a filter value is data, never SQL
  expect(await ids({ model: "m-a' OR '1'='1" })).toEqual([]);
});

test("q is a substring of either body in any case, with LIKE's wildcards matched literally", async () => {
  await store.insert(FIXTURE.map((d) => ({ ...d })));
  expect(await ids({ q: "HELLO world" })).toEqual(["a"]);
  expect(await ids({ q: "UPSTREAM" })).toEqual(["b"]);
  expect(await ids({ q: "%" })).toEqual(["b"]);
  expect(await ids({ q: "100%" })).toEqual(["b"]);
  expect(await ids({ q: "0% s" })).toEqual(["b"]);
  expect(await ids({ q: "_" })).toEqual(["c"]);
  expect(await ids({ q: "snake_case" })).toEqual(["c"]);
  expect(await ids({ q: "snakeXcase" })).toEqual([]);
  expect(await ids({ q: "h%o" })).toEqual([]);
  // the body's JSON text: a backslash is escaped there
  expect(await ids({ q: "c:\\\\dir" })).toEqual(["d"]);
  expect(await ids({ q: "\\" })).toEqual(["d"]);
  expect(likeLiteral("a%b_c\\d")).toBe("a\\%b\\_c\\\\d");
});

test("pages are newest first by (ts, id), with the total of all matches", async () => {
  const docs = [...FIXTURE.map((d) => ({ ...d })), doc("t1", NOW - 30_000), doc("t2", NOW - 30_000)];
  await store.insert(docs);
  const all = ["e", "d", "t2", "t1", "c", "b", "a"];
  const page = await store.list({}, 0, 3);
  expect(page.total).toBe(7);
  expect(page.records.map((r) => r.id)).toEqual(all.slice(0, 3));
  expect(await ids({}, 3, 3)).toEqual(all.slice(3, 6));
  expect(await ids({}, 6, 3)).toEqual(all.slice(6));
  expect(await store.list({}, 10, 3)).toEqual({ records: [], total: 7 });
  expect(await store.list({ model: "m-a" }, 1, 2)).toMatchObject({ total: 4 });
  expect(await ids({ model: "m-a" }, 1, 2)).toEqual(["t1", "c"]);
});

test("past the exact count's bound, the total is the database's estimate, said as such", async () => {
  const bounded = new PgHistoryStore(db, { history: { retentionDays: 7, maxRecords: 3 }, log, exactCountUpTo: 4 });
  await store.insert([...FIXTURE.map((d) => ({ ...d })), doc("t1", NOW - 30_000), doc("t2", NOW - 30_000)]);
  await db.query("ANALYZE history");
  const many = await bounded.list({}, 0, 2);
  expect(many.estimated).toBe(true);
  expect(many.total).toBeGreaterThanOrEqual(5);
  expect(many.records).toHaveLength(2);
  // few enough: exact, and not marked
  expect(await bounded.list({ model: "m-b" }, 0, 2)).not.toHaveProperty("estimated");
});

test("a count that would take longer than its budget gives the estimate, never below what the page shows", async () => {
  await store.insert([doc("seed", NOW - 60_000)]);
  // many rows with long bodies, so that counting a text search through them takes well over a millisecond
  await db.query(
    `INSERT INTO history (id, ts, started_at, finished_at, endpoint, kind, stream, model, client_ip, status, duration_ms, retries, nodes_tried, request_json, response_json)
     SELECT 'bulk-' || i, ${NOW} - i, started_at, finished_at, endpoint, kind, stream, model, client_ip, status, duration_ms, retries, nodes_tried,
            to_json(repeat('lorem ipsum ', 200) || i)::text, response_json
     FROM history, generate_series(1, 10000) AS i WHERE id = 'seed'`,
  );
  await db.query("ANALYZE history");
  const hurried = new PgHistoryStore(db, {
    history: { retentionDays: 7, maxRecords: 3 },
    log,
    exactCountUpTo: 100_000,
    countBudgetMs: 1,
  });
  // two letters: no trigram to look up, every body is read
  const page = await hurried.list({ q: "um" }, 0, 1);
  expect(page.estimated).toBe(true);
  expect(page.records.map((r) => r.id)).toEqual(["bulk-1"]);
  expect(page.total).toBeGreaterThanOrEqual(2);
  // with time enough, the same count is exact
  const patient = new PgHistoryStore(db, {
    history: { retentionDays: 7, maxRecords: 3 },
    log,
    exactCountUpTo: 100_000,
    countBudgetMs: 20_000,
  });
  expect(await patient.list({ q: "ipsum 999" }, 0, 1)).toMatchObject({ total: 11 });
}, 30_000);

test("keyset pages go through every match once, in order", async () => {
  const docs = [...FIXTURE.map((d) => ({ ...d })), doc("t1", NOW - 30_000), doc("t2", NOW - 30_000)];
  await store.insert(docs);
  for (const [filter, expected] of [
    [{}, ["e", "d", "t2", "t1", "c", "b", "a"]],
    [{ model: "m-a" }, ["t2", "t1", "c", "a"]],
    [{ status: "error" as const }, ["c", "b"]],
  ] as Array<[StoreFilter, string[]]>) {
    const seen: string[] = [];
    let after: { ts: number; id: string } | undefined;
    for (;;) {
      const page = await store.page(filter, after, 2);
      if (!page.length) break;
      seen.push(...page.map((r) => r.id));
      const last = page[page.length - 1];
      after = { ts: last.ts, id: last.id };
    }
    expect(seen).toEqual(expected);
  }
  // a cursor between two records of the same millisecond
  expect((await store.page({}, { ts: NOW - 30_000, id: "t2" }, 10)).map((r) => r.id)).toEqual(["t1", "c", "b", "a"]);
});

test("stats are the hour's numbers from the records of the last hour, and total_records counts them all", async () => {
  const now = Date.now();
  const docs = [
    doc("s1", now - 1000, { duration_ms: 100, ttft_ms: 10, tokens_out: 50 }),
    doc("s2", now - 61_000, { status: 500, duration_ms: 300, ttft_ms: null, tokens_out: null }),
    doc("s3", now - 30 * 60_000, { duration_ms: 200, ttft_ms: 20, tokens_out: 5 }),
    doc("old", now - 2 * 3_600_000, { duration_ms: 9999 }),
  ];
  await store.insert(docs.map((d) => ({ ...d })));
  const stats = await store.stats(now);
  expect(stats).toEqual({ ...hourStats(docs.slice(0, 3), now), total_records: 4 });
  expect(stats).toMatchObject({ total_requests: 3, error_requests: 1 });
});

test("purge removes what is past retention, and no cap applies", async () => {
  await store.insert([
    doc("fresh", NOW),
    doc("six", NOW - 6 * DAY),
    doc("edge", NOW - 7 * DAY + 1000),
    doc("eight", NOW - 8 * DAY),
    doc("old", NOW - 30 * DAY),
  ]);
  expect(await store.purge(NOW)).toEqual({ expired: 2, capped: 0 });
  expect((await ids({})).sort()).toEqual(["edge", "fresh", "six"]);
  expect(await store.purge(NOW + 2000, 1)).toEqual({ expired: 1, capped: 0 });
  expect((await ids({})).sort()).toEqual(["fresh", "six"]);
  expect(await store.purge(NOW + 2000)).toEqual({ expired: 0, capped: 0 });
});

test("a record the server refuses does not take the rest of its batch with it; large batches go in several statements", async () => {
  const bad = { ...doc("bad", NOW), client_ip: null as unknown as string };
  const nul = doc("nul", NOW, { model: "m\u0000x", nodes_tried: ["n\u0000"], error: "e\u0000" });
  await store.insert([doc("ok1", NOW), bad, nul, doc("ok2", NOW)]);
  expect((await ids({})).sort()).toEqual(["nul", "ok1", "ok2"]);
  expect(log.error).toHaveBeenCalledTimes(1);
  expect(log.error.mock.calls[0][0]).toMatch(/record bad not written/);
  expect((await store.get("nul"))!.nodes_tried).toEqual(["n\uFFFD"]);

  const many = Array.from({ length: 250 }, (_, i) => doc(`m${String(i).padStart(3, "0")}`, NOW - i));
  const query = jest.spyOn(db, "query");
  try {
    await store.insert(many);
    const inserts = query.mock.calls.filter(([sql]) => /^INSERT INTO history/.test(String(sql)));
    expect(inserts).toHaveLength(3);
  } finally {
    query.mockRestore();
  }
  expect((await store.list({}, 0, 1)).total).toBe(253);
  expect(await ids({}, 3, 3)).toEqual(["m000", "m001", "m002"]);
});

test("q runs on the trigram index, and the others on theirs", async () => {
  const [ext] = await db.query<{ n: string }>("SELECT count(*) AS n FROM pg_extension WHERE extname = 'pg_trgm'", {
    type: QueryTypes.SELECT,
  });
  const plan = async (filter: StoreFilter) =>
    db.transaction(async (transaction) => {
      await db.query("SET LOCAL enable_seqscan = off", { transaction });
      const bind: unknown[] = [];
      const rows = await db.query<{ "QUERY PLAN": string }>(`EXPLAIN SELECT id FROM history ${whereOf(filter, bind)}`, {
        bind,
        transaction,
        type: QueryTypes.SELECT,
      });
      return rows.map((r) => r["QUERY PLAN"]).join("\n");
    });
  if (Number(ext.n) > 0) expect(await plan({ q: "hello" })).toMatch(/history_search_text/);
  expect(await plan({ model: "m-a" })).toMatch(/history_model_ts/);
});
