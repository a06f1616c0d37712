/**
 * What routers sharing one PostgreSQL database must count and remember
 * together, so no router process is special: fixed-window counters (API
 * keys' requests per minute, failed logins per user and per address) and
 * the logged-out login tokens. Tables from migration 003-shared-state.
 */
import type { Sequelize } from "sequelize";

export interface Hit {
  /** Events in the current window, this one included. */
  count: number;
  /** Seconds until the window ends (at least 1). */
  retryAfterSecs: number;
}

/** Counters over fixed windows (aligned to multiples of `windowMs`), one row per `scope` and key. */
export class SharedCounter {
  constructor(
    private readonly db: Sequelize,
    /** What is counted (`rpm`, `login-user`…): keys of different scopes never meet. */
    private readonly scope: string,
    private readonly windowMs: number,
  ) {}

  private windowOf(now: number): number {
    return Math.floor(now / this.windowMs) * this.windowMs;
  }

  private retryAfter(start: number, now: number): number {
    return Math.max(1, Math.ceil((start + this.windowMs - now) / 1000));
  }

  /** Counts one event for `key`, atomically across every router. */
  async hit(key: string, now = Date.now()): Promise<Hit> {
    const start = this.windowOf(now);
    const [rows] = (await this.db.query(
      `INSERT INTO counters (scope, key, window_start, count) VALUES ($1, $2, $3, 1)
       ON CONFLICT (scope, key) DO UPDATE SET
         count = CASE WHEN counters.window_start = EXCLUDED.window_start THEN counters.count + 1 ELSE 1 END,
         window_start = EXCLUDED.window_start
       RETURNING count`,
      { bind: [this.scope, key, start] },
    )) as [Array<{ count: number }>, unknown];
    return { count: Number(rows[0].count), retryAfterSecs: this.retryAfter(start, now) };
  }

  /** Events for `key` in the current window, and when it ends. */
  async count(key: string, now = Date.now()): Promise<Hit> {
    const start = this.windowOf(now);
    const [rows] = (await this.db.query(
      "SELECT count FROM counters WHERE scope = $1 AND key = $2 AND window_start = $3",
      { bind: [this.scope, key, start] },
    )) as [Array<{ count: number }>, unknown];
    return { count: Number(rows[0]?.count ?? 0), retryAfterSecs: this.retryAfter(start, now) };
  }

  async reset(key: string): Promise<void> {
    await this.db.query("DELETE FROM counters WHERE scope = $1 AND key = $2", { bind: [this.scope, key] });
  }

  /** Drops this scope's ended windows. */
  async prune(now = Date.now()): Promise<void> {
    await this.db.query("DELETE FROM counters WHERE scope = $1 AND window_start < $2", {
      bind: [this.scope, this.windowOf(now)],
    });
  }
}

/** Logged-out login tokens (by `jti`), kept until they would have expired anyway. */
export class TokenDenylist {
  constructor(private readonly db: Sequelize) {}

  /** `exp`: the token's expiry, seconds since the epoch (its JWT claim). */
  async add(jti: string, exp: number): Promise<void> {
    await this.db.query("INSERT INTO revoked_tokens (jti, exp) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING", {
      bind: [jti, exp],
    });
  }

  /** The tokens logged out that have not expired yet, jti → exp. */
  async active(now = Date.now()): Promise<Map<string, number>> {
    const [rows] = (await this.db.query("SELECT jti, exp FROM revoked_tokens WHERE exp > $1", {
      bind: [Math.floor(now / 1000)],
    })) as [Array<{ jti: string; exp: string | number }>, unknown];
    return new Map(rows.map((r) => [r.jti, Number(r.exp)]));
  }

  async prune(now = Date.now()): Promise<void> {
    await this.db.query("DELETE FROM revoked_tokens WHERE exp <= $1", { bind: [Math.floor(now / 1000)] });
  }
}
