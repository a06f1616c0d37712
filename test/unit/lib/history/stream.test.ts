/**
 * History through a durable JetStream stream (lib/history/stream.ts and
 * stream-writer.ts), on a private `nats-server -js` of this file's own. The
 * store is a small one in memory that keeps a record once by id, as
 * PostgreSQL does, and can be made unreachable; it counts what it was given.
 */
import { historyRecord } from "../../../helpers/history";
import { startNats, type Proc } from "../../../helpers/procs";
import { waitFor } from "../../../helpers/wait";
import type { RecordEvent } from "../../../../lib/history/record";
import { StoreUnavailable, type Doc } from "../../../../lib/history/store";
import { HistoryStream, natsServers, streamNames } from "../../../../lib/history/stream";
import { StreamWriter } from "../../../../lib/history/stream-writer";

let nats: { proc: Proc; url: string };
const open: Array<{ close(): Promise<void> }> = [];
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

beforeAll(async () => {
  nats = await startNats(undefined, { jetstream: true });
});

afterAll(async () => {
  await nats?.proc.stop();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

class MemoryStore {
  readonly byId = new Map<string, Doc>();
  /** Records handed to insert, counting those given again. */
  given = 0;
  down = false;
  async insert(docs: Doc[]): Promise<void> {
    if (this.down) throw new StoreUnavailable(docs, new Error("connect ECONNREFUSED"));
    this.given += docs.length;
    for (const d of docs) if (!this.byId.has(d.id)) this.byId.set(d.id, d);
  }
}

let nsCount = 0;
async function openStream(namespace = `t${process.pid}-${++nsCount}`): Promise<HistoryStream> {
  const s = await HistoryStream.open({ url: nats.url, namespace, maxBytes: 16 * 1024 * 1024, name: "test", log });
  if (!s) throw new Error("no JetStream");
  open.push(s);
  return s;
}

function writer(stream: HistoryStream, store: MemoryStore): StreamWriter {
  const w = new StreamWriter(stream, { write: (docs) => store.insert(docs), log, batch: 50, retryMs: 200 });
  w.start();
  open.push({ close: () => w.stop() });
  return w;
}

/** A record as the api publishes it (bodies as JSON text). */
function recordEvent(id: string, ts = 1_700_000_000_000): RecordEvent {
  const { request_body, response_body, ...rest } = historyRecord(id, ts);
  return { ...rest, request_json: JSON.stringify(request_body), response_json: JSON.stringify(response_body) };
}

function records(n: number, prefix: string): RecordEvent[] {
  return Array.from({ length: n }, (_, i) => recordEvent(`${prefix}-${i}`, 1_700_000_000_000 + i));
}

test("names: one stream per namespace; a NATS URL's servers and credentials as Moleculer reads them", () => {
  expect(streamNames("")).toEqual({ stream: "LLM_ROUTER_HISTORY", subject: "llm-router.history" });
  expect(streamNames("team.a b")).toEqual({
    stream: "LLM_ROUTER_HISTORY_team_a_b",
    subject: "llm-router.team_a_b.history",
  });
  expect(natsServers("nats://u%40x:p%3Aw@h1:4222,nats://h2:4223")).toEqual({
    servers: ["h1:4222", "h2:4223"],
    user: "u@x",
    pass: "p:w",
  });
});

test("every published record is written once and acknowledged; the backlog drains to zero", async () => {
  const stream = await openStream();
  const store = new MemoryStore();
  const recs = records(120, "a");
  for (const r of recs) await stream.publish(r);
  expect(await stream.backlog()).toBe(120);
  writer(stream, store);
  await waitFor(() => store.byId.size === 120, { what: "all records written" });
  await waitFor(async () => (await stream.backlog()) === 0, { what: "the backlog to drain" });
  expect(store.given).toBe(120);
  expect(store.byId.get("a-7")?.request_json).toBe(recs[7].request_json);
});

test("records that end in one turn of the event loop go in one message", async () => {
  const stream = await openStream();
  const store = new MemoryStore();
  await Promise.all(records(50, "together").map((r) => stream.publish(r)));
  expect(await stream.backlog()).toBe(1);
  writer(stream, store);
  await waitFor(() => store.byId.size === 50, { what: "all records written" });
  expect(store.given).toBe(50);
});

test("while the store is unreachable, records wait in the stream; once it is back all are written, none twice", async () => {
  const stream = await openStream();
  const store = new MemoryStore();
  store.down = true;
  const w = writer(stream, store);
  await Promise.all(records(80, "b").map((r) => stream.publish(r)));
  await waitFor(() => w.unreachableSince !== null, { what: "the writer to see the store down" });
  expect(store.byId.size).toBe(0);
  expect(await stream.backlog()).toBeGreaterThan(0);
  store.down = false;
  await waitFor(() => store.byId.size === 80, { what: "the records written once the store is back" });
  await waitFor(async () => (await stream.backlog()) === 0, { what: "the backlog to drain" });
  expect(w.unreachableSince).toBeNull();
  expect(store.given).toBe(80);
});

test("a writer that stops holding a batch hands it back: another router's writer writes it", async () => {
  const ns = `handoff-${process.pid}`;
  const [one, two] = await Promise.all([openStream(ns), openStream(ns)]);
  const down = new MemoryStore();
  down.down = true;
  const first = writer(one, down);
  await Promise.all(records(30, "c").map((r) => one.publish(r)));
  await waitFor(() => first.unreachableSince !== null, { what: "the first writer to hold a batch" });
  await first.stop();
  const up = new MemoryStore();
  writer(two, up);
  await waitFor(() => up.byId.size === 30, { what: "the other writer to write the batch" });
  expect(down.byId.size).toBe(0);
});

test("a record too large for one NATS message is refused (the caller writes it itself)", async () => {
  const stream = await openStream();
  const rec = recordEvent("huge");
  rec.request_json = JSON.stringify("x".repeat(2 * 1024 * 1024));
  expect(await stream.publish(rec)).toBe(false);
  expect(await stream.backlog()).toBe(0);
});

test("a NATS server without JetStream: no stream (history is written by each router)", async () => {
  const plain = await startNats();
  try {
    expect(
      await HistoryStream.open({ url: plain.url, namespace: "x", maxBytes: 1024 * 1024, name: "test", log }),
    ).toBeNull();
  } finally {
    await plain.proc.stop();
  }
});
