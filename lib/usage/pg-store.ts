/**
 * Usage roll-ups in PostgreSQL (LLM_ROUTER_DATABASE_URL): the `usage_daily`
 * table of migration 008-usage, a row per day, key, user, model and node, its
 * primary key the row's id (lib/usage/rollup.ts `rowId`). Rows are added with
 * `INSERT … ON CONFLICT (id) DO UPDATE` whose sums add to the stored ones and
 * whose histogram (jsonb, bucket → count) is merged bucket by bucket in the
 * same statement: the row is locked for it, so routers adding to one row at
 * once each add theirs. A statement's rows go in id order, so two routers'
 * statements lock shared rows in the same order (no deadlock).
 */
import { QueryTypes, type Sequelize } from "sequelize";
import { openDatabase, releaseDatabase } from "../db/postgres";
import { unreachable } from "../history/pg-store";
import type { StoreLog } from "../history/store";
import { rowId, type UsageRow } from "./rollup";
import { addChunks, rowOf, type UsageRange, type UsageStore } from "./store";

/** Rows one statement adds at most. */
const CHUNK = 200;

const COLUMNS = [
  ["id", "text"],
  ["day", "date"],
  ["api_key_id", "text"],
  ["user_id", "text"],
  ["model", "text"],
  ["node_id", "text"],
  ["requests", "bigint"],
  ["errors", "bigint"],
  ["tokens_in", "bigint"],
  ["tokens_out", "bigint"],
  ["duration_ms_sum", "double precision"],
  ["latency_hist", "jsonb"],
] as const;

const SUMMED = ["requests", "errors", "tokens_in", "tokens_out", "duration_ms_sum"];

/** The stored histogram and the added one, bucket by bucket. */
const MERGED_HIST = `(
  SELECT coalesce(jsonb_object_agg(bucket, n), '{}'::jsonb) FROM (
    SELECT bucket, sum(n::bigint) AS n FROM (
      SELECT key AS bucket, value AS n FROM jsonb_each_text(usage_daily.latency_hist)
      UNION ALL
      SELECT key, value FROM jsonb_each_text(EXCLUDED.latency_hist)
    ) AS both_hists GROUP BY bucket
  ) AS merged
)`;

const UPSERT_TAIL =
  `ON CONFLICT (id) DO UPDATE SET ` +
  [...SUMMED.map((c) => `${c} = usage_daily.${c} + EXCLUDED.${c}`), `latency_hist = ${MERGED_HIST}`].join(", ");

/** Text as PostgreSQL stores it: it refuses U+0000 in text, kept as U+FFFD. */
const clean = (s: string | null) => (s === null ? null : s.replace(/\0/g, "\uFFFD"));

function valuesOf(r: UsageRow): unknown[] {
  return [
    rowId(r),
    r.day,
    clean(r.api_key_id),
    clean(r.user_id),
    clean(r.model),
    clean(r.node_id),
    r.requests,
    r.errors,
    r.tokens_in,
    r.tokens_out,
    r.duration_ms_sum,
    JSON.stringify(r.latency_hist),
  ];
}

export class PgUsageStore implements UsageStore {
  constructor(
    private readonly db: Sequelize,
    private readonly log: StoreLog,
    /** Called by `close` (the shared database's release). */
    private readonly release: () => Promise<void> = async () => undefined,
  ) {}

  /** The store on the process's database for `url` (migrated: lib/db/postgres.ts); `close` releases it. */
  static async open(url: string, log: StoreLog): Promise<PgUsageStore> {
    const db = await openDatabase(url, (message) => log.info(message));
    return new PgUsageStore(db, log, () => releaseDatabase(url));
  }

  async add(rows: UsageRow[]): Promise<void> {
    const sorted = rows
      .map((r) => ({ id: rowId(r), r }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((x) => x.r);
    const chunks: UsageRow[][] = [];
    for (let i = 0; i < sorted.length; i += CHUNK) chunks.push(sorted.slice(i, i + CHUNK));
    await addChunks(chunks, (chunk) => this.upsert(chunk), this.log, unreachable);
  }

  private async upsert(rows: UsageRow[]): Promise<void> {
    const bind: unknown[] = [];
    const tuples = rows.map((r) => {
      const values = valuesOf(r);
      const params = COLUMNS.map(([, type], i) => {
        bind.push(values[i]);
        return `$${bind.length}::${type}`;
      });
      return `(${params.join(", ")})`;
    });
    const columns = COLUMNS.map(([c]) => c).join(", ");
    await this.db.query(`INSERT INTO usage_daily (${columns}) VALUES ${tuples.join(", ")} ${UPSERT_TAIL}`, { bind });
  }

  async rows(range: UsageRange): Promise<UsageRow[]> {
    const bind: unknown[] = [range.from, range.to];
    let where = "day BETWEEN $1::date AND $2::date";
    if (range.userId !== undefined) {
      bind.push(clean(range.userId));
      where += ` AND user_id = $3::text`;
    }
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, api_key_id, user_id, model, node_id, requests, errors, ` +
        `tokens_in, tokens_out, duration_ms_sum, latency_hist FROM usage_daily WHERE ${where}`,
      { bind, type: QueryTypes.SELECT },
    );
    return rows.map(rowOf);
  }

  async maintain(): Promise<void> {}

  async close(): Promise<void> {
    await this.release();
  }
}
