/**
 * The embedded history store over NeDB's file: the sliced file compaction (a
 * compacted file holds just the live documents and the indexes, and NeDB
 * loads it back the same), and the store's own appends and removals, which
 * NeDB loads back as if it had written them.
 */
import fs from "node:fs";
import path from "node:path";
import { compactInSlices, isNedb, type NedbStore } from "../../../../lib/history/nedb";
import { NedbHistoryStore } from "../../../../lib/history/nedb-store";
import type { Doc } from "../../../../lib/history/store";
import { tempDir } from "../../../helpers/procs";

type Datastore = NedbStore & {
  loadDatabaseAsync(): Promise<void>;
  insertAsync(docs: object[]): Promise<object[]>;
  removeAsync(q: object, o: object): Promise<number>;
  ensureIndexAsync(o: object): Promise<void>;
  countAsync(q: object): Promise<number>;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Nedb = require("@seald-io/nedb") as new (o: object) => Datastore;

async function open(file: string): Promise<Datastore> {
  const db = new Nedb({ filename: file });
  await db.loadDatabaseAsync();
  return db;
}

test("compaction in slices keeps the live documents and the indexes, and NeDB loads them back", async () => {
  const file = path.join(tempDir("history-nedb"), "history.db");
  const db = await open(file);
  expect(isNedb(db)).toBe(true);
  expect(isNedb({ find() {} })).toBe(false);
  const docs = Array.from({ length: 1234 }, (_, i) => ({
    _id: `d${i}`,
    id: `req-${i}`,
    ts: 1000 + i,
    request_body: { text: `line "${i}"\nwith ümlaut`, nested: [1, null, { a: true }] },
    response_body: null,
  }));
  await db.insertAsync(docs);
  await db.ensureIndexAsync({ fieldName: "id" });
  await db.removeAsync({ ts: { $lt: 1100 } }, { multi: true });
  const before = fs.statSync(file).size;

  await compactInSlices(db, 100);

  const lines = fs.readFileSync(file, "utf8").trim().split("\n");
  expect(lines).toHaveLength(1134 + 1);
  expect(lines.some((l) => l.includes("$$deleted"))).toBe(false);
  expect(fs.statSync(file).size).toBeLessThan(before);
  expect(fs.existsSync(`${file}~`)).toBe(false);

  const again = await open(file);
  expect(await again.countAsync({})).toBe(1134);
  expect(Object.keys(again.indexes).sort()).toEqual(["_id", "id"]);
  expect(again.getAllData().find((d) => (d as { _id: string })._id === "d700")).toEqual(docs[700]);
});

test("an in-memory datastore is not compacted", async () => {
  const db = new Nedb({});
  await db.loadDatabaseAsync();
  await expect(compactInSlices(db)).resolves.toBeUndefined();
});

const silent = { info() {}, warn() {}, error() {} };

function rec(i: number): Doc {
  return {
    id: `req-${i}`,
    ts: 1_000_000 + i,
    started_at: new Date(1_000_000 + i).toISOString(),
    finished_at: new Date(1_000_010 + i).toISOString(),
    endpoint: "/v1/chat/completions",
    kind: "chat",
    stream: false,
    model: "m",
    node_id: "n1",
    node_name: null,
    client_ip: "127.0.0.1",
    api_key_id: null,
    api_key_name: null,
    user_id: null,
    request_json: JSON.stringify({ messages: [{ role: "user", content: `say "${i}"\nü $ref a.b` }] }),
    response_json: JSON.stringify({ choices: [{ message: { content: `answer ${i}` } }] }),
    status: 200,
    error: null,
    duration_ms: 10,
    ttft_ms: 5,
    tokens_in: 3,
    tokens_out: 4,
    retries: 0,
    nodes_tried: ["n1"],
  };
}

test("the store appends and removes in NeDB's format: NeDB and the store load the file back the same", async () => {
  const file = path.join(tempDir("history-nedb-store"), "history.db");
  const opts = { history: { retentionDays: 100_000, maxRecords: 1000 }, log: silent, written: jest.fn() };
  // a record stored by an earlier version (NeDB's own _id, bodies as objects) is kept
  const old = await open(file);
  await old.insertAsync([
    { _id: "nedbOwnId", ...rec(0), id: "old-0", request_json: undefined, request_body: { a: 1 } },
  ]);
  const store = await NedbHistoryStore.open(await open(file), opts);
  await store.insert(Array.from({ length: 450 }, (_, i) => rec(i + 1)));
  // a redelivered record is stored once, and not counted again (an old one too, and one sent twice in a batch,
  // or by two writes at once)
  await Promise.all([store.insert([rec(7), rec(451), rec(451), { ...rec(0), id: "old-0" }]), store.insert([rec(451)])]);
  const written = opts.written.mock.calls.flat(2) as Doc[];
  expect(written.map((d) => d.id)).toHaveLength(451);
  expect(written.filter((d) => d.id === "req-7")).toHaveLength(1);
  expect((await store.list({}, 0, 1000)).total).toBe(452);
  expect((await store.get("old-0"))?.request_body).toEqual({ a: 1 });

  // the cap: 95 % of it kept, the oldest dropped
  const trimmed = await store.purge(Date.now() + 1, 400);
  expect(trimmed.capped).toBe(52);
  const again = await open(file);
  expect(await again.countAsync({})).toBe(400);
  expect(await again.countAsync({ id: "old-0" })).toBe(0);
  const reopened = await NedbHistoryStore.open(again, opts);
  const r = await reopened.get("req-300");
  expect(r?.request_body).toEqual({ messages: [{ role: "user", content: `say "300"\nü $ref a.b` }] });
  expect(r?.nodes_tried).toEqual(["n1"]);
  expect((await reopened.list({}, 0, 1)).records[0].id).toBe("req-451");

  // a purge without a cap compacts the file: no removal lines left
  await reopened.purge(Date.now());
  const lines = fs.readFileSync(file, "utf8").trim().split("\n");
  expect(lines).toHaveLength(400);
  expect(lines.some((l) => l.includes("$$deleted"))).toBe(false);
  expect(await (await open(file)).countAsync({})).toBe(400);
});

test("an in-memory store keeps its records without a file", async () => {
  const db = new Nedb({});
  await db.loadDatabaseAsync();
  const store = await NedbHistoryStore.open(db, { history: { retentionDays: 1, maxRecords: 10 }, log: silent });
  await store.insert([rec(1), rec(2)]);
  expect((await store.list({}, 0, 10)).records.map((r) => r.id)).toEqual(["req-2", "req-1"]);
});
