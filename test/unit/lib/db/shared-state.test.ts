/**
 * What routers on one database count and remember together
 * (lib/db/shared-state.ts, lib/auth/login-throttle.ts), on the machine's
 * real PostgreSQL in a database of this file's own.
 */
import type { Sequelize } from "sequelize";
import { MAX_FAILURES_PER_USER, sharedThrottle } from "../../../../lib/auth/login-throttle";
import { openDatabase, releaseDatabase } from "../../../../lib/db/postgres";
import { SharedCounter, TokenDenylist } from "../../../../lib/db/shared-state";
import { createTestDatabase, type TestDatabase } from "../../../helpers/postgres";

let pg: TestDatabase;
let db: Sequelize;

beforeAll(async () => {
  pg = await createTestDatabase();
  db = await openDatabase(pg.url);
});

afterAll(async () => {
  await releaseDatabase(pg.url);
  await pg?.drop();
});

describe("shared counters", () => {
  const MIN = 60_000;
  const t0 = 1_700_000_080_000; // 40 s into a minute

  test("counts per key within a window, from many callers at once, atomically", async () => {
    const c = new SharedCounter(db, "rpm", MIN);
    const hits = await Promise.all(Array.from({ length: 25 }, () => c.hit("k1", t0)));
    expect(hits.map((h) => h.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(hits[0].retryAfterSecs).toBe(20);
    expect((await c.count("k1", t0)).count).toBe(25);
    expect((await c.count("k2", t0)).count).toBe(0);
  });

  test("a new window starts over; scopes never meet; reset and prune remove", async () => {
    const rpm = new SharedCounter(db, "rpm", MIN);
    const other = new SharedCounter(db, "login-user", MIN);
    expect((await rpm.hit("k3", t0)).count).toBe(1);
    expect((await rpm.hit("k3", t0 + 1000)).count).toBe(2);
    expect((await rpm.hit("k3", t0 + MIN)).count).toBe(1);
    expect((await other.hit("k3", t0 + MIN)).count).toBe(1);
    await rpm.reset("k3");
    expect((await rpm.count("k3", t0 + MIN)).count).toBe(0);
    expect((await other.count("k3", t0 + MIN)).count).toBe(1);
    await other.prune(t0 + 2 * MIN);
    expect((await other.count("k3", t0 + MIN)).count).toBe(0);
  });
});

describe("the token denylist", () => {
  test("keeps logged-out tokens until they expire; a token logged out twice is one entry", async () => {
    const list = new TokenDenylist(db);
    const now = Date.now();
    const later = Math.floor(now / 1000) + 3600;
    await list.add("jti-1", later);
    await list.add("jti-1", later);
    await list.add("jti-old", Math.floor(now / 1000) - 10);
    expect(await list.active(now)).toEqual(new Map([["jti-1", later]]));
    await list.prune(now);
    const [rows] = await db.query("SELECT jti FROM revoked_tokens ORDER BY jti");
    expect(rows).toEqual([{ jti: "jti-1" }]);
  });
});

describe("login throttling on the database", () => {
  test("failures for a user past the limit refuse logins, until a success resets the user's count", async () => {
    const a = sharedThrottle(db);
    const b = sharedThrottle(db); // another router
    for (let i = 0; i < MAX_FAILURES_PER_USER; i++) await (i % 2 ? a : b).failed("victim", `10.0.0.${i}`);
    expect(await a.refused("victim", "10.0.0.99")).toBeGreaterThan(0);
    expect(await b.refused("someone-else", "10.0.0.99")).toBeNull();
    await b.succeeded("victim");
    expect(await a.refused("victim", "10.0.0.99")).toBeNull();
  });
});
