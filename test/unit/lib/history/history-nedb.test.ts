/**
 * The history service's direct NeDB reads and its sliced file compaction: a
 * compacted file holds just the live documents (and the indexes), and NeDB
 * loads it back the same.
 */
import fs from "node:fs";
import path from "node:path";
import { compactInSlices, docsById, isNedb, type NedbStore } from "../../../../lib/history/nedb";
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

  // reads go on while the compaction runs
  const compaction = compactInSlices(db, 100);
  expect([...docsById(db, ["d5", "d500", "d1233"]).keys()]).toEqual(["d500", "d1233"]);
  await compaction;

  const lines = fs.readFileSync(file, "utf8").trim().split("\n");
  expect(lines).toHaveLength(1134 + 1);
  expect(lines.some((l) => l.includes("$$deleted"))).toBe(false);
  expect(fs.statSync(file).size).toBeLessThan(before);
  expect(fs.existsSync(`${file}~`)).toBe(false);

  const again = await open(file);
  expect(await again.countAsync({})).toBe(1134);
  expect(Object.keys(again.indexes).sort()).toEqual(["_id", "id"]);
  expect(docsById(again, ["d700"]).get("d700")).toEqual(docs[700]);
});

test("an in-memory datastore is not compacted", async () => {
  const db = new Nedb({});
  await db.loadDatabaseAsync();
  await expect(compactInSlices(db)).resolves.toBeUndefined();
});
