/**
 * Quota counts that routers as peers share on PostgreSQL (tables of
 * migration 010-quota): every router counts into the same rows, atomically,
 * so a limit holds for the cluster, not per process.
 *   quota_counters  requests of the current minute, tokens of the day and month
 *   quota_tat       the tokens-per-minute bucket of each subject (lib/quota/decide.ts)
 *   quota_leases    the requests being served, each until its lease runs out
 */
import type { Sequelize, Transaction } from "sequelize";
import type { Reading, Subject } from "./decide";
import { tokenInterval } from "./decide";
import { LEASE_MS, type QuotaStore } from "./store";
import { dayStart, minuteStart, monthStart, MINUTE_MS } from "./windows";

const BEGIN = `
  WITH req AS (
    INSERT INTO quota_counters (subject, period, start, used) SELECT $1, 'minute', $2, 1 WHERE $3
    ON CONFLICT (subject, period) DO UPDATE SET
      used = CASE WHEN quota_counters.start = EXCLUDED.start THEN quota_counters.used + 1 ELSE 1 END,
      start = EXCLUDED.start
    RETURNING used
  ), lease AS (
    INSERT INTO quota_leases (subject, lease, expires_at) SELECT $1, $4, $5 WHERE $6
    ON CONFLICT (subject, lease) DO UPDATE SET expires_at = EXCLUDED.expires_at
    RETURNING 1
  )
  SELECT
    (SELECT used FROM req) AS requests,
    (SELECT tat FROM quota_tat WHERE subject = $1) AS tat,
    (SELECT used FROM quota_counters WHERE subject = $1 AND period = 'day' AND start = $7) AS day,
    (SELECT used FROM quota_counters WHERE subject = $1 AND period = 'month' AND start = $8) AS month,
    (SELECT count(*) FROM quota_leases WHERE subject = $1 AND expires_at > $9) + (SELECT count(*) FROM lease) AS concurrent`;

const CONSUME = `
  WITH d AS (
    INSERT INTO quota_counters (subject, period, start, used) VALUES ($1, 'day', $2, $4)
    ON CONFLICT (subject, period) DO UPDATE SET
      used = CASE WHEN quota_counters.start = EXCLUDED.start THEN quota_counters.used + EXCLUDED.used ELSE EXCLUDED.used END,
      start = EXCLUDED.start
    RETURNING 1
  ), m AS (
    INSERT INTO quota_counters (subject, period, start, used) VALUES ($1, 'month', $3, $4)
    ON CONFLICT (subject, period) DO UPDATE SET
      used = CASE WHEN quota_counters.start = EXCLUDED.start THEN quota_counters.used + EXCLUDED.used ELSE EXCLUDED.used END,
      start = EXCLUDED.start
    RETURNING 1
  )
  INSERT INTO quota_tat (subject, tat) SELECT $1, $5::double precision + $6 WHERE $7
  ON CONFLICT (subject) DO UPDATE SET tat = GREATEST(quota_tat.tat, $5::double precision) + $6`;

/**
 * The advisory locks (with a subject's hash) that begins of one subject with a limit on requests at once
 * take in turn (any number only this project uses; migrations take 0x114c5201, the audit log 0x114c5202).
 */
const LEASE_LOCK = 0x11_4c_52_03;

export class PgQuotaStore implements QuotaStore {
  private lastPrune = 0;

  constructor(private readonly db: Sequelize) {}

  async begin(subjects: Subject[], lease: string, now: number): Promise<Reading[]> {
    this.prune(now);
    return Promise.all(
      subjects.map(async ({ id, limits }) => {
        const read = (transaction?: Transaction) =>
          this.db.query(BEGIN, {
            transaction,
            bind: [
              id,
              minuteStart(now),
              limits.rpm !== null,
              lease,
              now + LEASE_MS,
              limits.maxConcurrent !== null,
              dayStart(now),
              monthStart(now),
              now,
            ],
          });
        // requests at once are counted from the leases, which one statement's snapshot sees only as committed
        // before it began: begins of a subject take turns, each seeing the leases of those before it
        const [rows] = (
          limits.maxConcurrent === null
            ? await read()
            : await this.db.transaction(async (transaction) => {
                await this.db.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", {
                  bind: [LEASE_LOCK, id],
                  transaction,
                });
                return read(transaction);
              })
        ) as [Array<Record<string, string | number | null>>, unknown];
        const r = rows[0];
        return {
          requests: Number(r.requests ?? 0),
          requestsResetAt: minuteStart(now) + MINUTE_MS,
          tat: Number(r.tat ?? 0),
          day: Number(r.day ?? 0),
          month: Number(r.month ?? 0),
          concurrent: limits.maxConcurrent !== null ? Number(r.concurrent ?? 0) : 0,
        };
      }),
    );
  }

  async consume(subjects: Subject[], tokens: number, now: number): Promise<void> {
    if (tokens <= 0) return;
    await Promise.all(
      subjects.map(({ id, limits }) =>
        this.db.query(CONSUME, {
          bind: [
            id,
            dayStart(now),
            monthStart(now),
            tokens,
            now,
            limits.tpm !== null ? tokens * tokenInterval(limits.tpm) : 0,
            limits.tpm !== null,
          ],
        }),
      ),
    );
  }

  async hold(subjects: Subject[], lease: string, now: number): Promise<void> {
    const ids = subjects.filter((s) => s.limits.maxConcurrent !== null).map((s) => s.id);
    if (!ids.length) return;
    await this.db.query("UPDATE quota_leases SET expires_at = $3 WHERE subject = ANY($1) AND lease = $2", {
      bind: [ids, lease, now + LEASE_MS],
    });
  }

  async release(subjects: Subject[], lease: string): Promise<void> {
    const ids = subjects.filter((s) => s.limits.maxConcurrent !== null).map((s) => s.id);
    if (!ids.length) return;
    await this.db.query("DELETE FROM quota_leases WHERE subject = ANY($1) AND lease = $2", { bind: [ids, lease] });
  }

  /** Leases of requests whose router never ended them (it died) go after they ran out; once a minute. */
  private prune(now: number): void {
    if (now - this.lastPrune < MINUTE_MS) return;
    this.lastPrune = now;
    this.db.query("DELETE FROM quota_leases WHERE expires_at <= $1", { bind: [now] }).catch(() => undefined);
  }
}
