/**
 * Quota counts that routers as peers share (lib/quota/pg-store.ts), on the
 * machine's real PostgreSQL in a database of this file's own (migrated,
 * 010-quota included, by openDatabase).
 */
import type { Sequelize } from "sequelize";
import { openDatabase, releaseDatabase } from "../../../../lib/db/postgres";
import { type Subject, takeTokens } from "../../../../lib/quota/decide";
import { type Limits, NO_LIMITS } from "../../../../lib/quota/limits";
import { PgQuotaStore } from "../../../../lib/quota/pg-store";
import { LEASE_MS } from "../../../../lib/quota/store";
import { MINUTE_MS } from "../../../../lib/quota/windows";
import { createTestDatabase, type TestDatabase } from "../../../helpers/postgres";

let pg: TestDatabase;
let db: Sequelize;

beforeAll(async () => {
  pg = await createTestDatabase();
  db = await openDatabase(pg.url);
});

afterAll(async () => {
  if (pg) await releaseDatabase(pg.url);
  await pg?.drop();
});

const T0 = Date.parse("2024-03-31T23:58:10Z"); // 10 s into a minute, the month's last day
const subject = (id: string, limits: Partial<Limits> = {}): Subject => ({
  id,
  kind: id.startsWith("key:") ? "key" : "user",
  limits: { ...NO_LIMITS, ...limits },
});

describe("PgQuotaStore", () => {
  test("begin counts the minute's requests atomically: 20 at once count 1 to 20", async () => {
    const store = new PgQuotaStore(db);
    const s = subject("key:atomic", { rpm: 1000 });
    const readings = await Promise.all(Array.from({ length: 20 }, (_, i) => store.begin([s], `l${i}`, T0 + i)));
    expect(readings.map(([r]) => r.requests).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(readings[0][0].requestsResetAt).toBe(T0 - 10_000 + MINUTE_MS);
    // the next minute starts over
    expect((await store.begin([s], "next", T0 + 50_000))[0].requests).toBe(1);
  });

  test("requests are counted only for a subject whose requests are limited", async () => {
    const store = new PgQuotaStore(db);
    const limited = subject("key:rpm-only", { rpm: 5 });
    const free = subject("user:rpm-only");
    await store.begin([limited, free], "a", T0);
    const [k, u] = await store.begin([limited, free], "b", T0);
    expect(k.requests).toBe(2);
    expect(u).toEqual({
      requests: 0,
      requestsResetAt: T0 - 10_000 + MINUTE_MS,
      tat: 0,
      day: 0,
      month: 0,
      concurrent: 0,
    });
    const [rows] = await db.query("SELECT subject FROM quota_counters WHERE subject LIKE '%rpm-only'");
    expect(rows).toEqual([{ subject: "key:rpm-only" }]);
  });

  test("requests at once: a lease per request, counted until released", async () => {
    const store = new PgQuotaStore(db);
    const s = subject("key:conc", { maxConcurrent: 3 });
    expect((await store.begin([s], "a", T0))[0].concurrent).toBe(1);
    expect((await store.begin([s], "b", T0 + 1))[0].concurrent).toBe(2);
    expect((await store.begin([s], "c", T0 + 2))[0].concurrent).toBe(3);
    await store.release([s], "b");
    await store.release([s], "c");
    expect((await store.begin([s], "d", T0 + 3))[0].concurrent).toBe(2);
    await store.release([s], "d");
    // no lease for a subject whose requests at once are not limited
    const free = subject("key:conc-free", { rpm: 100 });
    await store.begin([free], "x", T0);
    expect((await store.begin([free], "y", T0))[0].concurrent).toBe(0);
    const [rows] = await db.query("SELECT count(*)::int AS n FROM quota_leases WHERE subject = 'key:conc-free'");
    expect(rows).toEqual([{ n: 0 }]);
    await store.release([free], "x"); // harmless
  });

  test("requests at once are counted atomically too: 20 begins at once on several stores see 1 to 20", async () => {
    const stores = Array.from({ length: 4 }, () => new PgQuotaStore(db));
    const k = subject("key:conc-burst", { maxConcurrent: 5 });
    const u = subject("user:conc-burst", { maxConcurrent: 50, rpm: 1000 });
    const readings = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % 4].begin([k, u], `burst${i}`, T0 + i)),
    );
    const upTo20 = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(readings.map(([r]) => r.concurrent).sort((a, b) => a - b)).toEqual(upTo20);
    expect(readings.map(([, r]) => r.concurrent).sort((a, b) => a - b)).toEqual(upTo20);
    expect(readings.map(([, r]) => r.requests).sort((a, b) => a - b)).toEqual(upTo20);
    // only 5 of them would be admitted
    expect(readings.filter(([r]) => r.concurrent <= 5)).toHaveLength(5);
    await Promise.all(readings.map((_, i) => stores[i % 4].release([k, u], `burst${i}`)));
    expect((await stores[0].begin([k, u], "after", T0 + 100)).map((r) => r.concurrent)).toEqual([1, 1]);
  });

  test("a lease that ran out is not counted; hold keeps one another LEASE_MS", async () => {
    const store = new PgQuotaStore(db);
    const s = subject("key:expiry", { maxConcurrent: 10 });
    await store.begin([s], "dropped", T0);
    await store.begin([s], "held", T0);
    await store.hold([s], "held", T0 + 50_000);
    // "dropped" ran out at T0 + LEASE_MS; "held" runs until T0 + 50 s + LEASE_MS
    expect((await store.begin([s], "probe", T0 + LEASE_MS))[0].concurrent).toBe(2);
    await store.release([s], "probe");
    expect((await store.begin([s], "probe2", T0 + 50_000 + LEASE_MS))[0].concurrent).toBe(1);
    // a hold for a subject without a limit on requests at once touches nothing
    await store.hold([subject("key:expiry")], "held", T0 + 1_000_000);
    const [rows] = await db.query(
      "SELECT lease, expires_at::float8 AS until FROM quota_leases WHERE subject = 'key:expiry' AND lease = 'held'",
    );
    expect(rows).toEqual([{ lease: "held", until: T0 + 50_000 + LEASE_MS }]);
  });

  test("consume adds to the day and the month, and moves the bucket as takeTokens does", async () => {
    const store = new PgQuotaStore(db);
    const k = subject("key:tokens", { tpm: 7 }); // a token every 8571.43 ms
    const u = subject("user:tokens");
    const t = Date.parse("2024-03-15T10:00:00Z"); // hours from midnight: one day throughout
    await store.consume([k, u], 100, t);
    await store.consume([k, u], 0, t); // nothing
    let tat = takeTokens(7, 0, 100, t);
    const [rk, ru] = await store.begin([k, u], "r", t + 5);
    expect(rk).toMatchObject({ day: 100, month: 100 });
    expect(rk.tat).toBeCloseTo(tat, 6);
    expect(ru).toMatchObject({ day: 100, month: 100, tat: 0 });
    // later than the bucket's tat: taken from now
    await store.consume([k], 3, tat + 10_000);
    tat = takeTokens(7, tat, 3, tat + 10_000);
    await store.consume([k], 4, tat - 1000);
    tat = takeTokens(7, tat, 4, tat - 1000);
    const [after] = await store.begin([k], "r", t + 5);
    expect(after).toMatchObject({ day: 107, month: 107 });
    expect(after.tat).toBeCloseTo(tat, 6);
  });

  test("a new UTC day starts the day's count over; a new month the month's", async () => {
    const store = new PgQuotaStore(db);
    const s = subject("key:days");
    await store.consume([s], 100, Date.parse("2024-03-30T12:00:00Z"));
    await store.consume([s], 10, Date.parse("2024-03-31T23:59:59.999Z"));
    expect((await store.begin([s], "r", Date.parse("2024-03-31T23:59:59.999Z")))[0]).toMatchObject({
      day: 10,
      month: 110,
    });
    // midnight, the 1st: a new day and month, before anything was used in them
    expect((await store.begin([s], "r", Date.parse("2024-04-01T00:00:00Z")))[0]).toMatchObject({ day: 0, month: 0 });
    await store.consume([s], 7, Date.parse("2024-04-01T08:00:00Z"));
    expect((await store.begin([s], "r", Date.parse("2024-04-01T09:00:00Z")))[0]).toMatchObject({ day: 7, month: 7 });
    expect((await store.begin([s], "r", Date.parse("2024-04-02T00:00:00Z")))[0]).toMatchObject({ day: 0, month: 7 });
    await store.consume([s], 2, Date.parse("2024-04-02T01:00:00Z"));
    expect((await store.begin([s], "r", Date.parse("2024-04-02T02:00:00Z")))[0]).toMatchObject({ day: 2, month: 9 });
  });

  test("two stores on one database (routers as peers) share their counts", async () => {
    const a = new PgQuotaStore(db);
    const b = new PgQuotaStore(db);
    const s = subject("key:peers", { rpm: 100, tpm: 6000, maxConcurrent: 10, dailyTokens: 1000 });
    const first = await Promise.all([a.begin([s], "a1", T0), b.begin([s], "b1", T0), a.begin([s], "a2", T0)]);
    expect(first.map(([r]) => r.requests).sort()).toEqual([1, 2, 3]);
    await a.consume([s], 30, T0);
    await b.consume([s], 20, T0);
    const [r] = await b.begin([s], "b2", T0 + 1);
    expect(r.requests).toBe(4);
    expect(r).toMatchObject({ day: 50, month: 50, concurrent: 4 });
    expect(r.tat).toBeCloseTo(takeTokens(6000, takeTokens(6000, 0, 30, T0), 20, T0), 6);
    // a release on one is seen by the other
    await a.release([s], "b1");
    await b.release([s], "a1");
    expect((await a.begin([s], "a3", T0 + 2))[0].concurrent).toBe(3); // a2, b2, a3
  });
});
