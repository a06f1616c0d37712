/**
 * The embedded store: NeDB (moleculer-db's adapter) is the persistence only.
 * Lists, counts, keyset pages, stats and retention read an in-memory index of
 * light entries (lib/history/record-index.ts) and fetch just the page's
 * documents by `_id`. It keeps at most LLM_ROUTER_HISTORY_MAX_RECORDS.
 * Writes and removals go to the store in small chunks with a turn of the event
 * loop between them, so a flush never holds up requests for long.
 */
import type { HistoryRecord } from "./record";
import { compactInSlices, docsById, type NedbStore } from "./nedb";
import { entryOf, HistoryIndex, type IndexEntry } from "./record-index";
import { hourStats } from "./stats";
import {
  DAY_MS,
  HOUR_MS,
  nextTurn,
  slices,
  view,
  writeChunks,
  type Cursor,
  type Doc,
  type HistoryStore,
  type StoreFilter,
  type StoreOptions,
} from "./store";

/** What the store calls on moleculer-db's adapter. */
export interface NedbAdapter {
  insertMany(docs: Doc[]): Promise<Doc[]>;
  removeMany(query: object): Promise<number>;
}

/** Records a store call inserts (about 2 ms of NeDB work), and ids one removal takes. */
const WRITE_CHUNK = 25;
const REMOVE_CHUNK = 100;
/** Signatures computed per turn of the event loop while the index catches up after start. */
const SIGN_CHUNK = 2000;

export class NedbHistoryStore implements HistoryStore {
  private readonly index = new HistoryIndex();
  /** Records removed from the embedded store since its file was last compacted. */
  private removedSinceCompaction = 0;
  private stopping = false;

  private constructor(
    private readonly adapter: NedbAdapter,
    private readonly nedb: NedbStore,
    private readonly opts: StoreOptions,
  ) {}

  /** The store over the adapter's datastore, its index loaded (text-search signatures follow in the background). */
  static async open(adapter: NedbAdapter, db: NedbStore, opts: StoreOptions): Promise<NedbHistoryStore> {
    // the index answers queries: NeDB's own index on ts (created by earlier versions) only costs
    if (db.indexes.ts && db.removeIndexAsync) await db.removeIndexAsync("ts");
    const store = new NedbHistoryStore(adapter, db, opts);
    store.index.load(db.getAllData() as Doc[]);
    store.signInBackground();
    return store;
  }

  /** Inserts a batch a chunk at a time, then trims the embedded store past its cap down to 95 % of it. */
  async insert(batch: Doc[]): Promise<void> {
    // NeDB's own ids cost a crypto call per record; a record's id is a UUID already
    for (const doc of batch) doc._id = doc.id;
    await writeChunks(
      slices(batch, WRITE_CHUNK),
      async (docs) => {
        const saved = await this.adapter.insertMany(docs);
        this.index.add(saved.map(entryOf));
        this.opts.written?.(docs);
      },
      this.opts.log,
    );
    // a full store is not trimmed on every write
    const cap = this.opts.history.maxRecords;
    if (this.index.size > cap) {
      await this.purge(Date.now(), Math.floor(cap * 0.95)).catch((err: Error) =>
        this.opts.log.error(`history: trim failed: ${err.message}`),
      );
    }
  }

  async list(filter: StoreFilter, offset: number, limit: number) {
    const { entries, total } = this.index.select(filter, offset, limit);
    return { records: this.docsOf(entries), total };
  }

  async page(filter: StoreFilter, after: Cursor | undefined, limit: number) {
    return this.docsOf(this.index.after(filter, after, limit));
  }

  async get(id: string) {
    const e = this.index.get(id);
    const doc = e ? docsById<Doc>(this.nedb, [e._id]).get(e._id) : undefined;
    return doc ? view(doc) : null;
  }

  async stats(now: number) {
    return { ...hourStats(this.index.since(now - HOUR_MS), now), total_records: this.index.size };
  }

  /**
   * Retention, and the cap (`keep` records at most). Called without `keep`
   * (start, hourly, the action), it also compacts the NeDB file if records
   * were removed since the last compaction: NeDB appends removals, and
   * rewriting the whole file on every trim at the cap would stall the router.
   */
  async purge(now: number, keep?: number) {
    const cutoff = now - this.opts.history.retentionDays * DAY_MS;
    const expired = this.index.dropBefore(cutoff);
    const capped = this.index.dropOldest(this.index.size - (keep ?? this.opts.history.maxRecords));
    const gone = [...expired, ...capped];
    for (let i = 0; i < gone.length; i += REMOVE_CHUNK) {
      if (i) await nextTurn();
      const ids = gone.slice(i, i + REMOVE_CHUNK).map((e) => e._id);
      this.removedSinceCompaction += await this.adapter.removeMany({ _id: { $in: ids } });
    }
    if (keep === undefined && this.removedSinceCompaction > 0) {
      this.removedSinceCompaction = 0;
      await compactInSlices(this.nedb);
    }
    if (gone.length) {
      this.opts.log.info(`history: purged ${expired.length} expired and ${capped.length} over-cap record(s)`);
    }
    return { expired: expired.length, capped: capped.length };
  }

  async close() {
    this.stopping = true;
  }

  /** The stored documents of index entries, in their order (read from NeDB's memory by `_id`). */
  private docsOf(entries: IndexEntry[]): HistoryRecord[] {
    if (!entries.length) return [];
    const byId = docsById<Doc>(
      this.nedb,
      entries.map((e) => e._id),
    );
    const out: HistoryRecord[] = [];
    for (const e of entries) {
      const d = byId.get(e._id);
      if (d) out.push(view(d));
    }
    return out;
  }

  /** Text-search signatures for the entries loaded at start, a chunk per turn of the event loop. */
  private signInBackground() {
    const step = () => {
      if (this.stopping) return;
      if (this.index.signSome(SIGN_CHUNK) > 0) setImmediate(step);
    };
    setImmediate(step);
  }
}
