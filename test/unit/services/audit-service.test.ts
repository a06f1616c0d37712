/**
 * The audit service in local brokers: on the memory store (list, its
 * filters and paging, verify), and on PostgreSQL (a database of this file's
 * own) with two routers appending at once, whose entries still make one
 * chain; an entry edited in the table fails verify at its seq.
 */
import { ServiceBroker } from "moleculer";
import type { AuditEntry, AuditRecord, ChainCheck } from "../../../lib/audit/chain";
import { openDatabase, releaseDatabase } from "../../../lib/db/postgres";
import AuditService from "../../../services/audit.service";
import { createTestDatabase, type TestDatabase } from "../../helpers/postgres";

const record = (i: number, actor = "admin"): AuditRecord => ({
  ts: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
  actor,
  actor_role: "admin",
  ip: "10.0.0.1",
  action: i % 2 ? "POST /api/nodes/:id/drain" : "DELETE /api/users/:id",
  target: `t${i}`,
  status: 200,
  changes: { n: i, "odd.key": true, $dollar: 1 },
});

async function broker(): Promise<ServiceBroker> {
  const b = new ServiceBroker({ logger: false, nodeID: `audit-${Math.random().toString(36).slice(2)}` });
  b.createService(AuditService);
  await b.start();
  return b;
}

const list = (b: ServiceBroker, params: object = {}) =>
  b.call<{ entries: AuditEntry[] }, object>("audit.list", params).then((r) => r.entries);
const verify = (b: ServiceBroker) => b.call<ChainCheck>("audit.verify");

describe("on the memory store", () => {
  let b: ServiceBroker;
  beforeAll(async () => {
    process.env.LLM_ROUTER_DATA_DIR = ":memory:";
    b = await broker();
  });
  afterAll(() => b?.stop());

  test("appends chain, list is newest first with filters and paging, verify passes", async () => {
    expect(await verify(b)).toEqual({ ok: true, count: 0, head: null });
    const made: AuditEntry[] = [];
    for (let i = 1; i <= 6; i++) made.push(await b.call("audit.append", record(i, i <= 4 ? "admin" : "root")));
    expect(made.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(made[0].changes).toEqual({ n: 1, "odd.key": true, $dollar: 1 });
    expect((await list(b)).map((e) => e.seq)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(await list(b)).toEqual([...made].reverse());
    expect((await list(b, { limit: "2" })).map((e) => e.seq)).toEqual([6, 5]);
    expect((await list(b, { limit: 2, before_seq: "5" })).map((e) => e.seq)).toEqual([4, 3]);
    expect((await list(b, { actor: "root" })).map((e) => e.seq)).toEqual([6, 5]);
    expect((await list(b, { action: "drAIn" })).map((e) => e.seq)).toEqual([5, 3, 1]);
    expect((await list(b, { action: "(" })).map((e) => e.seq)).toEqual([]);
    expect(await verify(b)).toEqual({ ok: true, count: 6, head: made[5].hash });
    const field = (name: string) => ({ data: [expect.objectContaining({ field: name })] });
    await expect(list(b, { limit: 501 })).rejects.toMatchObject(field("limit"));
    await expect(b.call("audit.append", { ...record(7), status: "x" })).rejects.toMatchObject(field("status"));
  });
});

describe("on PostgreSQL", () => {
  let pg: TestDatabase;
  const brokers: ServiceBroker[] = [];

  beforeAll(async () => {
    pg = await createTestDatabase();
    process.env.LLM_ROUTER_DATABASE_URL = pg.url;
    brokers.push(await broker(), await broker());
  });

  afterAll(async () => {
    for (const b of brokers) await b.stop();
    delete process.env.LLM_ROUTER_DATABASE_URL;
    await pg?.drop();
  });

  test("two routers appending at once make one chain; an edited entry fails verify at its seq", async () => {
    const [a, b] = brokers;
    await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).call("audit.append", record(i + 1))));
    const check = await verify(a);
    expect(check).toMatchObject({ ok: true, count: 30 });
    const entries = await list(b, { limit: 500 });
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => 30 - i));
    expect((await list(a, { limit: 3, before_seq: 11 })).map((e) => e.seq)).toEqual([10, 9, 8]);
    expect((await list(a, { action: "DRAIN", limit: 500 })).length).toBe(15);

    const db = await openDatabase(pg.url);
    try {
      await db.query(`UPDATE audit SET doc = jsonb_set(doc, '{changes_json}', '"{\\"n\\":999}"') WHERE id = '12'`);
    } finally {
      await releaseDatabase(pg.url);
    }
    expect(await verify(b)).toEqual({ ok: false, seq: 12, reason: "hash mismatch" });
  });
});
