/**
 * Where the usage roll-ups are kept (services/usage.service.ts): rows whose
 * sums only ever grow. Adding a row adds its sums to the stored row of the
 * same key (day, key, user, model, node), never overwriting it, so rows from
 * any number of flushes and routers add up.
 *   - moleculer-db's adapter (NeDB, MongoDB, memory): the `usage_daily`
 *     collection, one document per row, its `_id` the row's id; an add is an
 *     `$inc` of the stored document, or, when there is none, an insert (a
 *     router that loses the race to insert increments the winner's).
 *   - PostgreSQL: the `usage_daily` table of migration 008-usage, an upsert
 *     that adds (lib/usage/pg-store.ts).
 */
import { isDuplicate } from "../audit/store";
import type { StoreLog } from "../history/store";
import { compactInSlices, isNedb } from "../history/nedb";
import { BUCKETS, rowId, type UsageRow } from "./rollup";

export interface UsageRange {
  /** UTC days, `YYYY-MM-DD`, both included. */
  from: string;
  to: string;
  /** Only this user's rows (the owner of the keys). */
  userId?: string;
}

export interface UsageStore {
  /** Adds rows to the stored ones. A row the store refuses is logged and dropped; UsageStoreUnavailable when it cannot be reached. */
  add(rows: UsageRow[]): Promise<void>;
  /** The stored rows of the range. */
  rows(range: UsageRange): Promise<UsageRow[]>;
  /** Occasional upkeep (NeDB: its file rewritten without the lines updates appended). */
  maintain(): Promise<void>;
  close(): Promise<void>;
}

/** The store cannot be reached: `rows` were not added (the earlier ones were) and wait for the next try. */
export class UsageStoreUnavailable extends Error {
  constructor(
    readonly rows: UsageRow[],
    cause: Error,
  ) {
    super(`the usage store cannot be reached: ${cause.message}`);
  }
}

/**
 * Adds chunks one store call each (a call adds its chunk whole or not at
 * all); a chunk refused is tried a row at a time, so one bad row does not
 * take the others with it.
 */
export async function addChunks(
  chunks: UsageRow[][],
  add: (rows: UsageRow[]) => Promise<void>,
  log: StoreLog,
  unreachable: (err: unknown) => boolean,
): Promise<void> {
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i];
    try {
      await add(chunk);
    } catch (err) {
      if (unreachable(err)) throw new UsageStoreUnavailable(chunks.slice(i).flat(), err as Error);
      for (let j = 0; j < chunk.length; j++) {
        try {
          await add([chunk[j]]);
        } catch (e) {
          if (unreachable(e))
            throw new UsageStoreUnavailable([...chunk.slice(j), ...chunks.slice(i + 1).flat()], e as Error);
          log.error(`usage: a roll-up row of ${chunk[j].day} not added: ${(e as Error).message}`);
        }
      }
    }
  }
}

/** A stored row as the roll-up's row (numbers as numbers, the histogram's empty buckets left out). */
export function rowOf(d: Record<string, unknown>): UsageRow {
  const text = (v: unknown) => (typeof v === "string" ? v : null);
  const hist: Record<string, number> = {};
  const stored = (d.latency_hist ?? {}) as Record<string, unknown>;
  for (let b = 0; b < BUCKETS; b++) {
    const n = Number(stored[b] ?? 0);
    if (n > 0) hist[b] = n;
  }
  return {
    day: String(d.day),
    api_key_id: text(d.api_key_id),
    user_id: text(d.user_id),
    model: text(d.model),
    node_id: text(d.node_id),
    requests: Number(d.requests),
    errors: Number(d.errors),
    tokens_in: Number(d.tokens_in),
    tokens_out: Number(d.tokens_out),
    duration_ms_sum: Number(d.duration_ms_sum),
    latency_hist: hist,
  };
}

/** What this store needs of a moleculer-db adapter. */
export interface UsageAdapter {
  db?: unknown;
  collection?: { createIndex(spec: object): Promise<unknown> };
  find(filters: { query: object }): Promise<Array<Record<string, unknown>>>;
  insert(doc: object): Promise<unknown>;
  /** The document after the update, or null/undefined when there is none with this id. */
  updateById(id: string, update: object): Promise<unknown>;
}

/** MongoDB's errors for a server that cannot be reached. */
const mongoUnreachable = (err: unknown) =>
  /^Mongo(Network|ServerSelection|NotConnected|TopologyClosed)/.test((err as Error)?.name ?? "");

/** Inserts tried after losing the race to another router's insert. */
const INSERT_TRIES = 3;

export class AdapterUsageStore implements UsageStore {
  /** Whether rows were added since NeDB's file was last compacted. */
  private changed = false;

  private constructor(
    private readonly adapter: UsageAdapter,
    private readonly log: StoreLog,
  ) {}

  static async open(adapter: UsageAdapter, log: StoreLog): Promise<AdapterUsageStore> {
    // MongoDB: reports range over days, a viewer's over their own
    for (const spec of [{ day: 1 }, { user_id: 1, day: 1 }]) {
      await adapter.collection
        ?.createIndex(spec)
        .catch((err: Error) => log.warn(`usage: no index ${JSON.stringify(spec)}: ${err.message}`));
    }
    return new AdapterUsageStore(adapter, log);
  }

  async add(rows: UsageRow[]): Promise<void> {
    if (!rows.length) return;
    this.changed = true;
    await addChunks(
      rows.map((r) => [r]),
      ([r]) => this.addRow(r),
      this.log,
      mongoUnreachable,
    );
  }

  private async addRow(r: UsageRow): Promise<void> {
    const id = rowId(r);
    const inc: Record<string, number> = {
      requests: r.requests,
      errors: r.errors,
      tokens_in: r.tokens_in,
      tokens_out: r.tokens_out,
      duration_ms_sum: r.duration_ms_sum,
    };
    for (const [b, n] of Object.entries(r.latency_hist)) inc[`latency_hist.${b}`] = n;
    for (let tries = 1; ; tries++) {
      if (await this.adapter.updateById(id, { $inc: inc })) return;
      try {
        await this.adapter.insert({ _id: id, ...r, latency_hist: { ...r.latency_hist } });
        return;
      } catch (err) {
        // another router inserted it meanwhile: add to theirs
        if (!isDuplicate(err) || tries >= INSERT_TRIES) throw err;
      }
    }
  }

  async rows(range: UsageRange): Promise<UsageRow[]> {
    const query: Record<string, unknown> = { day: { $gte: range.from, $lte: range.to } };
    if (range.userId !== undefined) query.user_id = range.userId;
    return (await this.adapter.find({ query })).map(rowOf);
  }

  async maintain(): Promise<void> {
    const db = this.adapter.db;
    if (!this.changed || !isNedb(db)) return;
    this.changed = false;
    await compactInSlices(db);
  }

  async close(): Promise<void> {}
}
