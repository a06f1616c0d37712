/**
 * Where the history service keeps its records: one small interface, with an
 * implementation per kind of storage (lib/history/stores.ts picks one):
 * NeDB under an in-memory index (nedb-store.ts), a moleculer-db adapter
 * (MongoDB: adapter-store.ts) and PostgreSQL (pg-store.ts).
 */
import type { HistoryConfig } from "../config";
import type { HistoryRecord, RecordEvent } from "./record";
import type { EntryFilter } from "./record-index";
import type { hourStats } from "./stats";

/**
 * A stored record. Bodies are kept as JSON text: a store refuses field names
 * such as `$ref` or `a.b`, which JSON schemas in tool calls carry, and a
 * record must never be lost for its body. (Records stored before kept them
 * as objects in `request_body`/`response_body`.)
 */
export type Doc = Omit<HistoryRecord, "request_body" | "response_body"> & {
  _id?: unknown;
  /** With MongoDB: the text `q` searches (see `textOf`). */
  search_text?: string;
  request_json?: string;
  response_json?: string;
  request_body?: unknown;
  response_body?: unknown;
};

/**
 * A finished request's record as stores take it: bodies as JSON text (from
 * older senders they come as objects). What a store keeps besides (NeDB's
 * `_id`, MongoDB's search text) it adds when it writes.
 */
export function recordDoc(rec: RecordEvent | HistoryRecord): Doc {
  if ("request_json" in rec) return { ...rec };
  const { request_body, response_body, ...rest } = rec;
  return {
    ...rest,
    request_json: JSON.stringify(request_body ?? null),
    response_json: JSON.stringify(response_body ?? null),
  };
}

/** The filters a store applies (a validated HistoryFilter: lib/history/query.ts). */
export type StoreFilter = EntryFilter;

/** A (ts, id) cursor: keyset pages start after it. */
export interface Cursor {
  ts: number;
  id: string;
}

/** The dashboard's numbers of the last hour, and how many records are stored. */
export type HistoryStats = ReturnType<typeof hourStats> & { total_records: number };

export interface HistoryStore {
  /**
   * Writes records (bodies as JSON text); one the store refuses does not take the others with it.
   * Those it stored go to the options' `written`, a chunk at a time.
   */
  insert(batch: Doc[]): Promise<void>;
  /**
   * The filter's matches, newest first by (ts, id): `limit` of them from
   * `offset`, and how many there are (`estimated`: the database's estimate,
   * past an exact count's bound).
   */
  list(
    filter: StoreFilter,
    offset: number,
    limit: number,
  ): Promise<{ records: HistoryRecord[]; total: number; estimated?: boolean }>;
  /** The next `limit` matches after a cursor, newest first (keyset paging). */
  page(filter: StoreFilter, after: Cursor | undefined, limit: number): Promise<HistoryRecord[]>;
  get(id: string): Promise<HistoryRecord | null>;
  /** Per-minute counts, latency percentiles and tokens/s over the hour up to `now`. */
  stats(now: number): Promise<HistoryStats>;
  /** Removes the records past retention as of `now` and, where the store has a cap, all but the newest `keep`. */
  purge(now: number, keep?: number): Promise<{ expired: number; capped: number }>;
  /** The service stops: background work ends, and what the store holds open is released. */
  close(): Promise<void>;
}

/** What a store logs to (the service's logger). */
export interface StoreLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface StoreOptions {
  history: Pick<HistoryConfig, "retentionDays" | "maxRecords">;
  log: StoreLog;
  /** PostgreSQL: matches counted exactly up to this many (default EXACT_COUNT_UP_TO in pg-store.ts), then estimated. */
  exactCountUpTo?: number;
  /** PostgreSQL: how long the exact count may take before the estimate is given (default COUNT_BUDGET_MS in pg-store.ts). */
  countBudgetMs?: number;
  /**
   * Called with the records an insert stored, once each: a record stored
   * already (PostgreSQL: the same id, a redelivered one) is not passed again.
   */
  written?(docs: Doc[]): void;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const parsed = (json: string | undefined, old: unknown) => (json === undefined ? (old ?? null) : JSON.parse(json));

/** A record as clients see it. */
export function view(d: Doc): HistoryRecord {
  const { _id: _omit, search_text: _text, request_json, response_json, request_body, response_body, ...rec } = d;
  void _omit;
  void _text;
  return {
    ...rec,
    request_body: parsed(request_json, request_body),
    response_body: parsed(response_json, response_body),
  };
}

/** `items` in slices of `size`. */
export function slices<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The store cannot be reached (a database down or restarting): `unwritten`
 * are the records of the batch not written, to be tried again later.
 */
export class StoreUnavailable extends Error {
  constructor(
    readonly unwritten: Doc[],
    cause: Error,
  ) {
    super(`the history store cannot be reached: ${cause.message}`);
  }
}

/**
 * Writes chunks one store call each, with a turn of the event loop between
 * them, so a flush never holds up requests for long.
 */
export async function writeChunks(
  chunks: Doc[][],
  insert: (docs: Doc[]) => Promise<void>,
  log: StoreLog,
  /** Whether an error means the store is unreachable (then nothing is dropped: StoreUnavailable). */
  unreachable: (err: unknown) => boolean = () => false,
) {
  for (let i = 0; i < chunks.length; i++) {
    if (i) await nextTurn();
    const chunk = chunks[i];
    try {
      await insert(chunk);
    } catch (err) {
      if (unreachable(err)) throw new StoreUnavailable(chunks.slice(i).flat(), err as Error);
      // a store call is all or nothing: one bad record must not take the others with it
      for (const doc of chunk) {
        try {
          await insert([doc]);
        } catch (e) {
          if (unreachable(e)) throw new StoreUnavailable(chunks.slice(i).flat(), e as Error);
          log.error(`history: record ${doc.id} not written: ${(e as Error).message}`);
        }
      }
    }
  }
}
