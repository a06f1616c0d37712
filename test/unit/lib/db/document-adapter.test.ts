/**
 * The PostgreSQL document store (lib/db/document-adapter.ts) and the
 * migrations (lib/db/postgres.ts) on the machine's real PostgreSQL, in a
 * database of this file's own: what the services ask of moleculer-db
 * (NeDB-style queries, `$set`, ids) answered the same way.
 */
import type { Service, ServiceBroker } from "moleculer";
import { Sequelize } from "sequelize";
import { DocumentAdapter, docWhere, type Doc } from "../../../../lib/db/document-adapter";
import { MIGRATIONS } from "../../../../lib/db/migrations";
import { migrate, openDatabase, releaseDatabase } from "../../../../lib/db/postgres";
import { createTestDatabase, type TestDatabase } from "../../../helpers/postgres";

let pg: TestDatabase;
const logged: string[] = [];
const service = { logger: { info: (m: string) => logged.push(m) } } as unknown as Service;
const adapters: DocumentAdapter[] = [];

async function collection(name: string): Promise<DocumentAdapter> {
  const a = new DocumentAdapter(pg.url, name);
  a.init({} as ServiceBroker, service);
  await a.connect();
  adapters.push(a);
  return a;
}

beforeAll(async () => {
  pg = await createTestDatabase();
});

afterAll(async () => {
  for (const a of adapters) await a.disconnect();
  await pg?.drop();
});

describe("migrations", () => {
  test("three routers starting together on a new database: each migration runs once", async () => {
    const dbs = [0, 1, 2].map(() => new Sequelize(pg.url, { logging: false }));
    try {
      const ran = await Promise.all(dbs.map((db) => migrate(db)));
      const names = MIGRATIONS.map((m) => m.name);
      expect(ran.flat().sort()).toEqual(names);
      const [rows] = await dbs[0].query("SELECT name FROM schema_migrations ORDER BY name");
      expect(rows).toEqual(names.map((name) => ({ name })));
      // and again: nothing to do
      expect(await migrate(dbs[1])).toEqual([]);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  });

  test("one pool per process and URL, closed with its last user", async () => {
    const a = await openDatabase(pg.url);
    const b = await openDatabase(pg.url);
    expect(a).toBe(b);
    await releaseDatabase(pg.url);
    await expect(a.query("SELECT 1")).resolves.toBeTruthy();
    await releaseDatabase(pg.url);
    await expect(a.query("SELECT 1")).rejects.toThrow();
  });
});

describe("documents", () => {
  test("insert gives an id (or keeps the one given); find, findById, findOne, count return plain documents", async () => {
    const users = await collection("users");
    const a = await users.insert({ username: "ada", role: "admin", nested: { x: 1 } });
    expect(a._id).toEqual(expect.any(String));
    const b = await users.insert({ _id: "fixed-id", username: "bob", role: "viewer" });
    expect(b._id).toBe("fixed-id");
    expect(await users.findById(a._id)).toEqual({ _id: a._id, username: "ada", role: "admin", nested: { x: 1 } });
    expect(await users.findById("nope")).toBeNull();
    expect((await users.find({ query: { role: "viewer" } })).map((d) => d.username)).toEqual(["bob"]);
    expect(await users.findOne({ username: "ada" })).toMatchObject({ _id: a._id });
    expect(await users.count({ query: { role: "admin" } })).toBe(1);
    expect(await users.count()).toBe(2);
    expect((await users.find({ sort: ["-username"] })).map((d) => d.username)).toEqual(["bob", "ada"]);
  });

  test("usernames are unique: a second admin with the same name is refused", async () => {
    const users = await collection("users");
    await expect(users.insert({ username: "ada", role: "viewer" })).rejects.toThrow();
  });

  test("queries: numbers compare as numbers, $in, $exists, $ne, $or, paths into the document", async () => {
    const docs = await collection("responses");
    for (const [i, ts] of [5, 40, 300].entries()) {
      await docs.insert({ _id: `r${i}`, ts, scope: i ? "key:a" : "key:b", meta: { team: i % 2 ? "x" : "y" } });
    }
    await docs.insert({ _id: "r3", scope: "key:a", flag: true });
    const ids = async (query: Record<string, unknown>) =>
      (await docs.find({ query, sort: ["_id"] })).map((d: Doc) => d._id);
    // as text, "300" < "40": compared as numbers it is not
    expect(await ids({ ts: { $lt: 100 } })).toEqual(["r0", "r1"]);
    expect(await ids({ ts: { $gte: 40, $lte: 300 } })).toEqual(["r1", "r2"]);
    expect(await ids({ _id: { $in: ["r0", "r2", "zz"] } })).toEqual(["r0", "r2"]);
    expect(await ids({ ts: { $exists: true } })).toEqual(["r0", "r1", "r2"]);
    expect(await ids({ ts: { $exists: false } })).toEqual(["r3"]);
    expect(await ids({ scope: { $ne: "key:a" } })).toEqual(["r0"]);
    expect(await ids({ $or: [{ scope: "key:b" }, { flag: true }] })).toEqual(["r0", "r3"]);
    expect(await ids({ "meta.team": "x" })).toEqual(["r1"]);
    expect(await ids({ scope: "key:a", ts: { $gt: 100 } })).toEqual(["r2"]);
    // a value is never an operator: a client's text cannot become one
    expect(await ids({ scope: "'; DROP TABLE responses; --" })).toEqual([]);
    expect(() => docWhere({ ts: { $where: "1" } })).toThrow(/\$where/);
  });

  test("$set merges into the document; updateMany counts; removeMany and removeById remove", async () => {
    const keys = await collection("api_keys");
    const k = await keys.insert({ name: "k", owner: "u1", lastUsedAt: null, allowedModels: ["m"] });
    await keys.insert({ name: "k2", owner: "u1" });
    const updated = await keys.updateById(k._id, { $set: { lastUsedAt: "2026-12-04", allowedModels: null } });
    expect(updated).toEqual({ _id: k._id, name: "k", owner: "u1", lastUsedAt: "2026-12-04", allowedModels: null });
    expect(await keys.updateMany({ owner: "u1" }, { $set: { owner: "u2" } })).toBe(2);
    expect(await keys.count({ query: { owner: "u2" } })).toBe(2);
    expect(await keys.removeById(k._id)).toMatchObject({ name: "k" });
    expect(await keys.findById(k._id)).toBeNull();
    expect(await keys.removeMany({ owner: "u2" })).toBe(1);
    expect(await keys.count()).toBe(0);
  });

  test("bodies with keys a document store refuses elsewhere ($ref, dots) are kept as they are", async () => {
    const models = await collection("models");
    const doc = { id: "m", schema: { $ref: "#/$defs/a", "a.b": 1, $defs: { a: { type: "string" } } } };
    const saved = await models.insert(doc);
    expect(await models.findById(saved._id)).toEqual({ ...doc, _id: saved._id });
  });
});
