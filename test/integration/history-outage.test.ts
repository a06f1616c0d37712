/**
 * History on PostgreSQL while the database is down: the history service (in
 * a local broker) keeps the records it could not write and writes them once
 * the server is back, none lost and none doubled. The server is a private
 * one (test/helpers/private-postgres.ts), stopped and started by the test.
 */
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { Client } from "pg";
import { historyRecord } from "../helpers/history";
import { startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres";
import { waitFor } from "../helpers/wait";

let pg: PrivatePostgres;
let broker: ServiceBroker;

const record = (id: string) => historyRecord(id);

async function storedIds(): Promise<string[]> {
  const c = new Client({ connectionString: pg.url });
  await c.connect();
  try {
    return (await c.query("SELECT id FROM history ORDER BY id")).rows.map((r: { id: string }) => r.id);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  pg = await startPrivatePostgres();
  process.env.LLM_ROUTER_DATABASE_URL = pg.url;
  process.env.LLM_ROUTER_DATA_DIR = ":memory:";
  // the service reads its configuration when it is created
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const HistoryService = require("../../services/history.service").default as ServiceSchema;
  broker = new ServiceBroker({ logger: false });
  broker.createService(HistoryService);
  await broker.start();
}, 60_000);

afterAll(async () => {
  await broker?.stop();
  delete process.env.LLM_ROUTER_DATABASE_URL;
  pg?.destroy();
});

test("records made while PostgreSQL is down are written once it is back: none lost, none doubled", async () => {
  const before = ["a1", "a2", "a3"];
  for (const id of before) await broker.emit("history.record", record(id));
  await broker.call("history.flush");
  expect(await storedIds()).toEqual(before);

  pg.stop();
  const during = Array.from({ length: 450 }, (_, i) => `b${String(i).padStart(3, "0")}`);
  for (const id of during) await broker.emit("history.record", record(id));
  // flushes fail meanwhile: nothing is dropped, and the service says how far behind it is
  await broker.call("history.flush");
  const behind = await broker.call<{ waiting: number; unreachable_since: string | null }>("history.backlog");
  expect(behind.waiting).toBe(during.length);
  expect(behind.unreachable_since).not.toBeNull();
  pg.start();

  await waitFor(async () => (await storedIds()).length === before.length + during.length, {
    timeoutMs: 20_000,
    what: "the records kept during the outage to be written",
  });
  expect(await storedIds()).toEqual([...before, ...during]);
  expect(await broker.call("history.backlog")).toEqual({ via: "process", waiting: 0, unreachable_since: null });
}, 60_000);
