/**
 * History in PostgreSQL (LLM_ROUTER_DATABASE_URL): the `history` table of
 * migration 002-history, a column per record field, bodies as JSON text.
 * Filters, order, counts and keyset pages are SQL on its indexes; `q` is a
 * substring of either body in any case, on the trigram index where the server
 * has pg_trgm. Every value a client sends is a bound parameter. Writes are
 * idempotent by record id (a redelivered record is never doubled, nor passed
 * to `written` again). No record cap: retention only.
 */
import { QueryTypes, type Sequelize } from "sequelize";
import { openDatabase, releaseDatabase } from "../db/postgres";
import type { HistoryRecord } from "./record";
import { hourStats, type StatSample } from "./stats";
import {
  DAY_MS,
  HOUR_MS,
  writeChunks,
  type Cursor,
  type Doc,
  type HistoryStore,
  type StoreFilter,
  type StoreOptions,
} from "./store";

/** The table's columns, in record order, each with the type its parameter is cast to. */
const COLUMNS = [
  ["id", "text"],
  ["ts", "bigint"],
  ["started_at", "text"],
  ["finished_at", "text"],
  ["endpoint", "text"],
  ["kind", "text"],
  ["stream", "boolean"],
  ["model", "text"],
  ["node_id", "text"],
  ["node_name", "text"],
  ["client_ip", "text"],
  ["api_key_id", "text"],
  ["api_key_name", "text"],
  ["user_id", "text"],
  ["request_json", "text"],
  ["response_json", "text"],
  ["status", "integer"],
  ["error", "text"],
  ["duration_ms", "double precision"],
  ["ttft_ms", "double precision"],
  ["tokens_in", "integer"],
  ["tokens_out", "integer"],
  ["retries", "integer"],
  ["nodes_tried", "jsonb"],
  ["dropped_tools", "jsonb"],
  ["served_model", "text"],
  ["load_ms", "double precision"],
  ["queue_ms", "double precision"],
  ["queue_position", "integer"],
] as const;

type Column = (typeof COLUMNS)[number][0];

const SELECTED = COLUMNS.map(([c]) => c).join(", ");

/** The text `q` searches: both bodies in lower case, a stored column with a trigram index (migration 004). */
const SEARCHED = "search";

/** Rows one INSERT writes at most (one parameter per column each), and body characters. */
const INSERT_ROWS = 100;
const INSERT_CHARS = 4_000_000;

/** A row as pg returns it: bigint as text, jsonb parsed. */
type Row = Omit<
  HistoryRecord,
  "ts" | "request_body" | "response_body" | "dropped_tools" | "served_model" | "load_ms" | "queue_ms" | "queue_position"
> & {
  ts: string | number;
  request_json: string;
  response_json: string;
  dropped_tools: string[] | null;
  served_model: string | null;
  load_ms: number | null;
  queue_ms: number | null;
  queue_position: number | null;
};

/** A row as the record the other stores give. */
function recordOf(row: Row): HistoryRecord {
  const { ts, request_json, response_json, dropped_tools, served_model, load_ms, queue_ms, queue_position, ...rest } =
    row;
  return {
    ...rest,
    ts: Number(ts),
    ...(dropped_tools ? { dropped_tools } : {}),
    ...(served_model !== null ? { served_model } : {}),
    ...(load_ms !== null ? { load_ms } : {}),
    ...(queue_ms !== null ? { queue_ms } : {}),
    ...(queue_position !== null ? { queue_position } : {}),
    request_body: JSON.parse(request_json),
    response_body: JSON.parse(response_json),
  };
}

/**
 * jsonb refuses the character U+0000 in a string (text columns get it escaped
 * by Sequelize): a node id or tool name holding one is kept with U+FFFD.
 */
function jsonArray(list: unknown): string {
  const items = Array.isArray(list) ? list : [];
  return JSON.stringify(items.map((s) => (typeof s === "string" ? s.replace(/\0/g, "\uFFFD") : s)));
}

/** A record's value for a column, as its parameter (null, never undefined: Sequelize refuses that). */
function valueOf(d: Doc, c: Column): unknown {
  switch (c) {
    case "request_json":
      return d.request_json ?? JSON.stringify(d.request_body ?? null);
    case "response_json":
      return d.response_json ?? JSON.stringify(d.response_body ?? null);
    case "nodes_tried":
      return jsonArray(d.nodes_tried);
    case "dropped_tools":
      return d.dropped_tools ? jsonArray(d.dropped_tools) : null;
    default:
      return d[c] ?? null;
  }
}

/** A batch as the rows of one INSERT each: at most INSERT_ROWS, and about INSERT_CHARS of bodies. */
function insertChunks(batch: Doc[]): Doc[][] {
  const out: Doc[][] = [];
  let chunk: Doc[] = [];
  let chars = 0;
  for (const d of batch) {
    const size = (d.request_json?.length ?? 0) + (d.response_json?.length ?? 0);
    if (chunk.length && (chunk.length >= INSERT_ROWS || chars + size > INSERT_CHARS)) {
      out.push(chunk);
      chunk = [];
      chars = 0;
    }
    chunk.push(d);
    chars += size;
  }
  if (chunk.length) out.push(chunk);
  return out;
}

/** PostgreSQL's codes for a server shutting down, starting or not reachable (connection exceptions). */
const UNREACHABLE_CODES = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"]);

/** Whether an error means the database cannot be reached now (the records wait), not that a record was refused. */
export function unreachable(err: unknown): boolean {
  const e = err as { name?: string; message?: string; original?: { code?: string }; parent?: { code?: string } };
  const code = e?.original?.code ?? e?.parent?.code;
  return (
    /^Sequelize(Connection|HostNotFound|HostNotReachable|AccessDenied|InvalidConnection)/.test(e?.name ?? "") ||
    (code !== undefined && (UNREACHABLE_CODES.has(code) || /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT)$/.test(code))) ||
    /Connection terminated|connect ECONNREFUSED/.test(e?.message ?? "")
  );
}

/** `q` as a LIKE pattern's literal text: `%`, `_` and the escape character (backslash, LIKE's default) escaped. */
export function likeLiteral(q: string): string {
  return q.replace(/[\\%_]/g, "\\$&");
}

/** The WHERE clause of a filter (after a cursor, when given), its values appended to `bind`. */
export function whereOf(f: StoreFilter, bind: unknown[], after?: Cursor): string {
  const param = (v: unknown) => {
    bind.push(v);
    return `$${bind.length}`;
  };
  const conds: string[] = [];
  if (f.model !== undefined) conds.push(`model = ${param(f.model)}`);
  if (f.node !== undefined) conds.push(`node_id = ${param(f.node)}`);
  if (f.kind !== undefined) conds.push(`kind = ${param(f.kind)}`);
  if (f.status === "success") conds.push("status < 400");
  else if (f.status === "error") conds.push("status >= 400");
  else if (typeof f.status === "number") conds.push(`status = ${param(f.status)}::integer`);
  if (f.from !== undefined) conds.push(`ts >= ${param(f.from)}::bigint`);
  if (f.to !== undefined) conds.push(`ts <= ${param(f.to)}::bigint`);
  if (f.q) conds.push(`${SEARCHED} LIKE '%' || lower(${param(likeLiteral(f.q))}::text) || '%'`);
  if (after) conds.push(`(ts, id) < (${param(after.ts)}::bigint, ${param(after.id)}::text)`);
  return conds.length ? `WHERE ${conds.join(" AND ")}` : "";
}

/** Matches counted exactly; past this many, `list` gives the planner's estimate. */
export const EXACT_COUNT_UP_TO = 1_000;
/**
 * How long the exact count may take: a filter whose matches are spread thin
 * (a model's errors: two whole index scans before the first match) is
 * estimated instead, so a list answers in about the page's own time.
 */
export const COUNT_BUDGET_MS = 30;

/** Whether a query was cancelled by its statement_timeout (PostgreSQL's query_canceled). */
function cancelledByTimeout(err: unknown): boolean {
  const e = err as { parent?: { code?: string }; original?: { code?: string } };
  return (e?.parent?.code ?? e?.original?.code) === "57014";
}

export class PgHistoryStore implements HistoryStore {
  constructor(
    private readonly db: Sequelize,
    private readonly opts: StoreOptions,
    /** Called by `close` (the shared database's release). */
    private readonly release: () => Promise<void> = async () => undefined,
  ) {}

  /** The store on the process's database for `url` (migrated: lib/db/postgres.ts); `close` releases it. */
  static async open(url: string, opts: StoreOptions): Promise<PgHistoryStore> {
    const db = await openDatabase(url, (message) => opts.log.info(message));
    return new PgHistoryStore(db, opts, () => releaseDatabase(url));
  }

  /** Inserts a batch, many rows per statement; a record stored already is left as it is. */
  async insert(batch: Doc[]): Promise<void> {
    await writeChunks(insertChunks(batch), (docs) => this.insertRows(docs), this.opts.log, unreachable);
  }

  async list(filter: StoreFilter, offset: number, limit: number) {
    const bind: unknown[] = [];
    const where = whereOf(filter, bind);
    const countBind = bind.slice();
    bind.push(limit, offset);
    const n = bind.length;
    const [rows, counted] = await Promise.all([
      this.select<Row>(
        `SELECT ${SELECTED} FROM history ${where} ORDER BY ts DESC, id DESC LIMIT $${n - 1}::integer OFFSET $${n}::integer`,
        bind,
      ),
      this.count(where, countBind),
    ]);
    if (!counted.estimated) return { records: rows.map(recordOf), total: counted.total };
    // an estimate is never below what this page shows there is (one more when it is full)
    const seen = offset + rows.length + (rows.length === limit ? 1 : 0);
    return { records: rows.map(recordOf), total: Math.max(counted.total, seen), estimated: true };
  }

  /**
   * How many records match: exactly up to EXACT_COUNT_UP_TO (or the
   * options' bound) when that takes at most COUNT_BUDGET_MS; else the
   * planner's estimate, said as such (counting a million rows, or scanning
   * two whole indexes for a few thousand, would cost more than the page).
   */
  private async count(where: string, bind: unknown[]): Promise<{ total: number; estimated?: boolean }> {
    const bound = Math.floor(this.opts.exactCountUpTo ?? EXACT_COUNT_UP_TO);
    const budget = Math.ceil(this.opts.countBudgetMs ?? COUNT_BUDGET_MS);
    let exact = 0;
    try {
      const [row] = await this.db.transaction(async (transaction) => {
        await this.db.query(`SET LOCAL statement_timeout = ${budget}`, { transaction });
        return this.db.query<{ n: string }>(
          `SELECT count(*) AS n FROM (SELECT 1 FROM history ${where} LIMIT ${bound + 1}) AS matched`,
          { bind, type: QueryTypes.SELECT, transaction },
        );
      });
      exact = Number(row?.n ?? 0);
      if (exact <= bound) return { total: exact };
    } catch (err) {
      if (!cancelledByTimeout(err)) throw err;
    }
    const [plan] = await this.select<{ "QUERY PLAN": Array<{ Plan: { "Plan Rows": number } }> }>(
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM history ${where}`,
      bind,
    );
    const estimate = Math.round(plan?.["QUERY PLAN"]?.[0]?.Plan?.["Plan Rows"] ?? 0);
    return { total: Math.max(estimate, exact), estimated: true };
  }

  async page(filter: StoreFilter, after: Cursor | undefined, limit: number) {
    const bind: unknown[] = [];
    const where = whereOf(filter, bind, after);
    bind.push(limit);
    const rows = await this.select<Row>(
      `SELECT ${SELECTED} FROM history ${where} ORDER BY ts DESC, id DESC LIMIT $${bind.length}::integer`,
      bind,
    );
    return rows.map(recordOf);
  }

  async get(id: string) {
    const rows = await this.select<Row>(`SELECT ${SELECTED} FROM history WHERE id = $1::text`, [id]);
    return rows.length ? recordOf(rows[0]) : null;
  }

  async stats(now: number) {
    const [rows, counted] = await Promise.all([
      this.select<Omit<StatSample, "ts"> & { ts: string | number }>(
        `SELECT ts, status, duration_ms, ttft_ms, tokens_out FROM history WHERE ts >= $1::bigint`,
        [now - HOUR_MS],
      ),
      this.select<{ n: string }>(`SELECT count(*) AS n FROM history`, []),
    ]);
    const samples = rows.map((r): StatSample => ({ ...r, ts: Number(r.ts) }));
    return { ...hourStats(samples, now), total_records: Number(counted[0]?.n ?? 0) };
  }

  /** Retention (no cap here: `keep` does not apply). */
  async purge(now: number, _keep?: number) {
    const cutoff = now - this.opts.history.retentionDays * DAY_MS;
    const expired = Number(
      await this.db.query(`DELETE FROM history WHERE ts < $1::bigint`, {
        // ts are whole milliseconds: below a fractional cutoff is below its ceiling
        bind: [Math.ceil(cutoff)],
        type: QueryTypes.BULKDELETE,
      }),
    );
    if (expired) this.opts.log.info(`history: purged ${expired} expired record(s)`);
    return { expired, capped: 0 };
  }

  async close() {
    await this.release();
  }

  private select<T extends object>(sql: string, bind: unknown[]): Promise<T[]> {
    return this.db.query<T>(sql, { bind, type: QueryTypes.SELECT });
  }

  private async insertRows(docs: Doc[]): Promise<void> {
    const bind: unknown[] = [];
    const rows = docs.map((d) => {
      const params = COLUMNS.map(([c, type]) => {
        bind.push(valueOf(d, c));
        return `$${bind.length}::${type}`;
      });
      return `(${params.join(", ")})`;
    });
    const [stored] = (await this.db.query(
      `INSERT INTO history (${SELECTED}) VALUES ${rows.join(", ")} ON CONFLICT (id) DO NOTHING RETURNING id`,
      { bind },
    )) as [Array<{ id: string }>, unknown];
    if (!this.opts.written) return;
    // a record stored already (redelivered by the stream) is not returned, nor passed on again
    const fresh = new Set(stored.map((r) => r.id));
    const written = docs.filter((d) => fresh.delete(d.id));
    if (written.length) this.opts.written(written);
  }
}
