/**
 * The history service in a local broker on the in-memory store: batched
 * writes, retention with an injected clock, and the record cap.
 */
import { ServiceBroker, type ServiceSchema } from "moleculer";
import type { HistoryRecord } from "../../../lib/history/record";
import { historyRecord } from "../../helpers/history";

const DAY = 86_400_000;
let broker: ServiceBroker;

const record = (id: string, ts: number) => historyRecord(id, ts);

async function ids(): Promise<string[]> {
  const page = await broker.call<{ records: HistoryRecord[] }, object>("history.list", { query: { per_page: 200 } });
  return page.records.map((r) => r.id).sort();
}

beforeAll(async () => {
  process.env.LLM_ROUTER_DATA_DIR = ":memory:";
  process.env.LLM_ROUTER_HISTORY_RETENTION_DAYS = "7";
  process.env.LLM_ROUTER_HISTORY_MAX_RECORDS = "20";
  // read after the env above is set: the service takes its settings when loaded
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = require("../../../services/history.service") as typeof import("../../../services/history.service");
  const HistoryService = loaded.default;
  broker = new ServiceBroker({ logger: false });
  broker.createService(HistoryService as unknown as ServiceSchema);
  await broker.start();
});

afterAll(async () => {
  await broker.stop();
});

test("records sent as events are written in a batch, and purge removes only those past retention", async () => {
  const now = Date.parse("2026-11-28T12:00:00Z");
  const ages = { fresh: 0, six: 6 * DAY, edge: 7 * DAY - 1000, eight: 8 * DAY, old: 30 * DAY };
  for (const [id, age] of Object.entries(ages)) broker.emit("history.record", record(id, now - age));
  await broker.call("history.flush");
  expect(await ids()).toEqual(["edge", "eight", "fresh", "old", "six"]);

  const purged = await broker.call<{ expired: number }, object>("history.purge", { now });
  expect(purged.expired).toBe(2);
  expect(await ids()).toEqual(["edge", "fresh", "six"]);
  // two seconds later "edge" is past retention too; "six" is not
  await broker.call("history.purge", { now: now + 2000 });
  expect(await ids()).toEqual(["fresh", "six"]);
});

test("the embedded store keeps at most LLM_ROUTER_HISTORY_MAX_RECORDS, dropping the oldest", async () => {
  const now = Date.now();
  for (let i = 0; i < 30; i++)
    broker.emit("history.record", record(`r${String(i).padStart(2, "0")}`, now - (30 - i) * 1000));
  await broker.call("history.flush");
  const kept = await ids();
  expect(kept.length).toBeLessThanOrEqual(20);
  // the newest survive
  expect(kept).toContain("r29");
  expect(kept).not.toContain("r00");
});

test("one record by id, keyset pages, and stats of the last hour from the index", async () => {
  const now = Date.now();
  for (let i = 0; i < 3; i++) {
    broker.emit("history.record", { ...record(`s${i}`, now - i * 1000), status: i === 1 ? 500 : 200 });
  }
  await broker.call("history.flush");
  const one = await broker.call<HistoryRecord, object>("history.get", { id: "s1" });
  expect(one).toMatchObject({ id: "s1", status: 500, request_body: { id: "s1" } });
  expect(one).not.toHaveProperty("_id");
  expect(one).not.toHaveProperty("search_text");
  await expect(broker.call("history.get", { id: "nope" })).rejects.toMatchObject({ code: 404 });

  const first = await broker.call<HistoryRecord[], object>("history.page", { filter: { q: "s" }, limit: 2 });
  expect(first.map((r) => r.id)).toEqual(["s0", "s1"]);
  const next = await broker.call<HistoryRecord[], object>("history.page", {
    filter: { q: "s" },
    after: { ts: first[1].ts, id: first[1].id },
    limit: 2,
  });
  expect(next.map((r) => r.id)).toEqual(["s2"]);

  const stats = await broker.call<{ total_requests: number; error_requests: number; total_records: number }>(
    "history.stats",
  );
  expect(stats.error_requests).toBe(1);
  expect(stats.total_requests).toBeGreaterThanOrEqual(3);
  const all = await broker.call<{ total_count: number }, object>("history.list", { query: {} });
  expect(stats.total_records).toBe(all.total_count);
});

test("a record the store refuses (an id it holds already) does not take the rest of its batch with it", async () => {
  const now = Date.now();
  broker.emit("history.record", record("dup", now - 3000));
  await broker.call("history.flush");
  for (const id of ["d1", "dup", "d2"]) broker.emit("history.record", record(id, now - 1000));
  await broker.call("history.flush");
  const kept = await ids();
  expect(kept).toEqual(expect.arrayContaining(["d1", "d2", "dup"]));
  expect(kept.filter((id) => id === "dup")).toHaveLength(1);
});
