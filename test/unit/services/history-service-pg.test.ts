/**
 * The history service on PostgreSQL (LLM_ROUTER_DATABASE_URL, a database of
 * this file's own) in a local broker: records sent as events are written in
 * batches, listed, fetched, paged and counted through the actions, a
 * redelivered record is stored once, and what is buffered at stop is written.
 */
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { QueryTypes } from "sequelize";
import { openDatabase, releaseDatabase } from "../../../lib/db/postgres";
import type { HistoryRecord } from "../../../lib/history/record";
import { createTestDatabase, type TestDatabase } from "../../helpers/postgres";
import { historyRecord } from "../../helpers/history";

const DAY = 86_400_000;
let tdb: TestDatabase;
let broker: ServiceBroker;
let HistoryService: ServiceSchema;

const record = historyRecord;

interface Page {
  records: HistoryRecord[];
  total_count: number;
  page: number;
  per_page: number;
}

const list = (query: object) => broker.call<Page, object>("history.list", { query });
const ids = async (query: object = { per_page: 200 }) => (await list(query)).records.map((r) => r.id);

async function startBroker(): Promise<void> {
  broker = new ServiceBroker({ logger: false });
  broker.createService(HistoryService);
  await broker.start();
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  process.env.LLM_ROUTER_DATABASE_URL = tdb.url;
  process.env.LLM_ROUTER_DATA_DIR = ":memory:";
  process.env.LLM_ROUTER_HISTORY_RETENTION_DAYS = "7";
  process.env.LLM_ROUTER_HISTORY_MAX_RECORDS = "20";
  // read after the env above is set: the service takes its settings when created
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = require("../../../services/history.service") as typeof import("../../../services/history.service");
  HistoryService = loaded.default as unknown as ServiceSchema;
  await startBroker();
});

afterAll(async () => {
  await broker?.stop();
  delete process.env.LLM_ROUTER_DATABASE_URL;
  await tdb?.drop();
});

beforeEach(async () => {
  const db = await openDatabase(tdb.url);
  await db.query("TRUNCATE history");
  await releaseDatabase(tdb.url);
});

test("records sent as events are listed with filters, fetched by id, paged by cursor and counted", async () => {
  const now = Date.now();
  for (let i = 0; i < 5; i++) {
    broker.emit(
      "history.record",
      record(`r${i}`, now - (5 - i) * 1000, {
        model: i % 2 ? "m-odd" : "m-even",
        status: i === 3 ? 502 : 200,
        request_body: { prompt: i === 2 ? "Needle_In 100% haystack" : "plain" },
      }),
    );
  }
  await broker.call("history.flush");

  const page = await list({ per_page: "2", page: "2" });
  expect(page).toMatchObject({ total_count: 5, page: 2, per_page: 2 });
  expect(page.records.map((r) => r.id)).toEqual(["r2", "r1"]);
  expect(await ids({ model: "m-odd" })).toEqual(["r3", "r1"]);
  expect(await ids({ status: "error" })).toEqual(["r3"]);
  expect(await ids({ status: "success", model: "m-odd" })).toEqual(["r1"]);
  expect(await ids({ q: "needle_in 100%" })).toEqual(["r2"]);
  expect(await ids({ q: "needle%in" })).toEqual([]);
  expect(await ids({ from: new Date(now - 2500).toISOString() })).toEqual(["r4", "r3"]);
  await expect(list({ status: "bogus" })).rejects.toMatchObject({ code: 400 });

  const one = await broker.call<HistoryRecord, object>("history.get", { id: "r2" });
  expect(one).toEqual(
    record("r2", now - 3000, { model: "m-even", request_body: { prompt: "Needle_In 100% haystack" } }),
  );
  await expect(broker.call("history.get", { id: "nope" })).rejects.toMatchObject({ code: 404 });

  const first = await broker.call<HistoryRecord[], object>("history.page", { filter: { model: "m-even" }, limit: 2 });
  expect(first.map((r) => r.id)).toEqual(["r4", "r2"]);
  const next = await broker.call<HistoryRecord[], object>("history.page", {
    filter: { model: "m-even" },
    after: { ts: first[1].ts, id: first[1].id },
    limit: 2,
  });
  expect(next.map((r) => r.id)).toEqual(["r0"]);

  const stats = await broker.call<{ total_requests: number; error_requests: number; total_records: number }>(
    "history.stats",
  );
  expect(stats).toMatchObject({ total_requests: 5, error_requests: 1, total_records: 5 });
});

test("a redelivered record is stored once; a batch event and JSON-text records are taken as they come", async () => {
  const now = Date.now();
  const rec = record("dup", now - 1000);
  broker.emit("history.record", rec);
  await broker.call("history.flush");
  const { request_body, response_body, ...rest } = record("j1", now);
  broker.emit("history.records", {
    records: [
      rec,
      { ...rest, request_json: JSON.stringify(request_body), response_json: JSON.stringify(response_body) },
    ],
  });
  await broker.call("history.flush");
  expect((await ids()).sort()).toEqual(["dup", "j1"]);
  expect(await broker.call("history.get", { id: "j1" })).toMatchObject({ request_body: { id: "j1" } });
});

test("purge removes only what is past retention; there is no record cap", async () => {
  const now = Date.parse("2026-11-28T12:00:00Z");
  const ages = { fresh: 0, six: 6 * DAY, edge: 7 * DAY - 1000, eight: 8 * DAY, old: 30 * DAY };
  for (const [id, age] of Object.entries(ages)) broker.emit("history.record", record(id, now - age));
  for (let i = 0; i < 30; i++) broker.emit("history.record", record(`c${String(i).padStart(2, "0")}`, now - i));
  await broker.call("history.flush");
  expect(await broker.call("history.purge", { now })).toEqual({ expired: 2, capped: 0 });
  expect((await list({})).total_count).toBe(33);
  // two seconds later "edge" is past retention too; "six" is not
  expect(await broker.call("history.purge", { now: now + 2000 })).toEqual({ expired: 1, capped: 0 });
  expect((await list({})).total_count).toBe(32);
  expect(await ids({ q: "edge" })).toEqual([]);
  expect(await ids({ q: "six" })).toEqual(["six"]);
});

test("what is buffered when the service stops is written, and it is there after a restart", async () => {
  const now = Date.now();
  broker.emit("history.record", record("late", now));
  await broker.stop();
  const db = await openDatabase(tdb.url);
  try {
    const rows = await db.query<{ id: string }>("SELECT id FROM history", { type: QueryTypes.SELECT });
    expect(rows.map((r) => r.id)).toEqual(["late"]);
  } finally {
    await releaseDatabase(tdb.url);
  }
  await startBroker();
  expect(await ids()).toEqual(["late"]);
});
