/**
 * History in a moleculer-db adapter's collection, queried through it: with
 * MONGO_URI the queries go to MongoDB, on its indexes, and `q` searches a
 * stored `search_text`. No record cap: retention only. Writes go to the
 * store in small chunks with a turn of the event loop between them.
 */
import { storeQuery, textOf, type HistoryFilter } from "./query";
import { hourStats, type StatSample } from "./stats";
import {
  DAY_MS,
  HOUR_MS,
  slices,
  view,
  writeChunks,
  type Cursor,
  type Doc,
  type HistoryStore,
  type StoreFilter,
  type StoreOptions,
} from "./store";

/** The parts of moleculer-db's adapter the store uses. */
export interface CollectionAdapter {
  db?: { countAsync?(q: object): Promise<number> };
  collection?: { createIndex(spec: object): Promise<unknown> };
  find(q: { query?: object; sort?: string[]; offset?: number; limit?: number }): Promise<Doc[]>;
  findOne(q: object): Promise<Doc | null>;
  count(q: { query?: object }): Promise<number>;
  insertMany(docs: Doc[]): Promise<Doc[]>;
  removeMany(query: object): Promise<number>;
}

/** Records a store call inserts. */
const WRITE_CHUNK = 25;

export class AdapterHistoryStore implements HistoryStore {
  private constructor(
    private readonly adapter: CollectionAdapter,
    private readonly opts: StoreOptions,
  ) {}

  static async open(adapter: CollectionAdapter, opts: StoreOptions): Promise<AdapterHistoryStore> {
    if (adapter.collection) {
      // MongoDB: lists sort on (ts, id) and retention ranges over ts
      await adapter.collection
        .createIndex({ ts: -1, id: -1 })
        .catch((err: Error) => opts.log.warn(`history: no index on ts: ${err.message}`));
    }
    return new AdapterHistoryStore(adapter, opts);
  }

  /** Inserts a batch a chunk at a time; MongoDB searches a stored `search_text`. */
  async insert(batch: Doc[]): Promise<void> {
    for (const doc of batch) doc.search_text = textOf(doc.request_json, doc.response_json);
    await writeChunks(
      slices(batch, WRITE_CHUNK),
      async (docs) => {
        await this.adapter.insertMany(docs);
        this.opts.written?.(docs);
      },
      this.opts.log,
    );
  }

  // storeQuery reads only the filter's conditions (no page or format)
  async list(filter: StoreFilter, offset: number, limit: number) {
    const query = storeQuery(filter as HistoryFilter);
    const [docs, total] = await Promise.all([
      this.adapter.find({ query, sort: ["-ts", "-id"], offset, limit }),
      this.count(query),
    ]);
    return { records: docs.map(view), total };
  }

  async page(filter: StoreFilter, after: Cursor | undefined, limit: number) {
    const base = storeQuery(filter as HistoryFilter);
    const query = after
      ? { $and: [base, { $or: [{ ts: { $lt: after.ts } }, { ts: after.ts, id: { $lt: after.id } }] }] }
      : base;
    const docs = await this.adapter.find({ query, sort: ["-ts", "-id"], limit });
    return docs.map(view);
  }

  async get(id: string) {
    const doc = await this.adapter.findOne({ id });
    return doc ? view(doc) : null;
  }

  async stats(now: number) {
    const docs = await this.adapter.find({ query: { ts: { $gte: now - HOUR_MS } } });
    return { ...hourStats(docs as StatSample[], now), total_records: await this.count({}) };
  }

  /** Retention (no cap here: `keep` does not apply). */
  async purge(now: number, _keep?: number) {
    const cutoff = now - this.opts.history.retentionDays * DAY_MS;
    const expired = await this.adapter.removeMany({ ts: { $lt: cutoff } });
    if (expired) this.opts.log.info(`history: purged ${expired} expired record(s)`);
    return { expired, capped: 0 };
  }

  async close() {}

  /**
   * NeDB's own count: moleculer-db's NeDB adapter counts by copying every
   * matching document (about 15 times slower at 100,000 records).
   */
  private count(query: object) {
    const db = this.adapter.db;
    return db?.countAsync ? db.countAsync(query) : this.adapter.count({ query });
  }
}
