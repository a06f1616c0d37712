/**
 * The embedded store: NeDB's file, NeDB's format, this store's memory.
 * moleculer-db's NeDB adapter loads the file at start; the store then takes
 * the documents over (a map by `_id`, and an in-memory index of light entries,
 * lib/history/record-index.ts, that lists, counts, keyset pages, stats and
 * retention read) and empties NeDB's own memory. From then on it appends
 * documents and removals to the file itself, as NeDB would (one JSON line a
 * document, `{"$$deleted":true,"_id":…}` for a removal), in NeDB's executor,
 * so NeDB loads the file back the same at the next start. NeDB's insert
 * copied each document twice, serialised it with a replacer called for every
 * key and kept it in a balanced tree by `_id`: about a third of what history
 * cost a request (bench/RESULTS.md, session 15). It keeps at most
 * LLM_ROUTER_HISTORY_MAX_RECORDS. Large writes go in chunks with a turn of the
 * event loop between them, so a flush never holds up requests for long.
 */
import fs from "node:fs/promises";
import type { HistoryRecord } from "./record";
import { compactInSlices, type NedbStore } from "./nedb";
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

/** Records serialised per turn of the event loop (a few hundred µs), and removals per turn. */
const WRITE_CHUNK = 200;
const REMOVE_CHUNK = 1000;
/** Signatures computed per turn of the event loop while the index catches up after start. */
const SIGN_CHUNK = 2000;

export class NedbHistoryStore implements HistoryStore {
  private readonly index = new HistoryIndex();
  /** The stored documents by `_id` (records stored by earlier versions have NeDB's own ids). */
  private readonly docs = new Map<string, Doc>();
  /** Records removed from the embedded store since its file was last compacted. */
  private removedSinceCompaction = 0;
  private stopping = false;
  /** Signatures are being computed in the background. */
  private signing = false;

  private constructor(
    private readonly nedb: NedbStore,
    private readonly opts: StoreOptions,
  ) {}

  /**
   * The store over the datastore moleculer-db's adapter has loaded: its
   * documents are taken over, NeDB's memory emptied (text-search signatures
   * follow in the background).
   */
  static async open(db: NedbStore, opts: StoreOptions): Promise<NedbHistoryStore> {
    // the index answers queries: NeDB's own index on ts (created by earlier versions) only costs
    if (db.indexes.ts && db.removeIndexAsync) await db.removeIndexAsync("ts");
    const store = new NedbHistoryStore(db, opts);
    const docs = db.getAllData() as Doc[];
    for (const d of docs) store.docs.set(String(d._id), d);
    store.index.load(docs);
    // NeDB keeps nothing in memory from now on: the documents are this store's
    db._resetIndexes();
    store.signInBackground();
    return store;
  }

  /**
   * Appends a batch to the file and the index, a chunk per turn of the event
   * loop; a record stored already (the same id, redelivered) is skipped. Then
   * trims the store past its cap down to 95 % of it.
   */
  async insert(batch: Doc[]): Promise<void> {
    await writeChunks(
      slices(batch, WRITE_CHUNK),
      async (chunk) => {
        const fresh: Doc[] = [];
        let lines = "";
        for (const doc of chunk) {
          // a record's id is a UUID already: it is the document's `_id` too
          const _id = String(doc.id);
          if (this.docs.has(_id) || this.index.get(doc.id)) continue;
          doc._id = _id;
          // taken now: a second copy (in this write or one running beside it) is skipped
          this.docs.set(_id, doc);
          lines += this.line(doc);
          fresh.push(doc);
        }
        if (!fresh.length) return;
        try {
          await this.append(lines);
        } catch (err) {
          for (const doc of fresh) this.docs.delete(doc._id as string);
          throw err;
        }
        this.index.add(fresh.map(entryOf));
        this.opts.written?.(fresh);
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
    if (filter.q) this.signInBackground();
    return { records: this.docsOf(entries), total };
  }

  async page(filter: StoreFilter, after: Cursor | undefined, limit: number) {
    if (filter.q) this.signInBackground();
    return this.docsOf(this.index.after(filter, after, limit));
  }

  async get(id: string) {
    const e = this.index.get(id);
    const doc = e ? this.docs.get(e._id) : undefined;
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
      let lines = "";
      for (const e of gone.slice(i, i + REMOVE_CHUNK)) {
        if (!this.docs.delete(e._id)) continue;
        lines += this.line({ $$deleted: true, _id: e._id });
        this.removedSinceCompaction++;
      }
      if (lines) await this.append(lines);
    }
    if (keep === undefined && this.removedSinceCompaction > 0) {
      this.removedSinceCompaction = 0;
      await compactInSlices(this.nedb, undefined, () => this.docs.values());
    }
    if (gone.length) {
      this.opts.log.info(`history: purged ${expired.length} expired and ${capped.length} over-cap record(s)`);
    }
    return { expired: expired.length, capped: capped.length };
  }

  async close() {
    this.stopping = true;
  }

  /** The stored documents of index entries, in their order. */
  private docsOf(entries: IndexEntry[]): HistoryRecord[] {
    const out: HistoryRecord[] = [];
    for (const e of entries) {
      const d = this.docs.get(e._id);
      if (d) out.push(view(d));
    }
    return out;
  }

  /** A document's line in NeDB's file (history documents hold no Date: plain JSON is NeDB's serialisation of them). */
  private line(doc: object): string {
    return `${this.nedb.persistence.afterSerialization(JSON.stringify(doc))}\n`;
  }

  /** Appends lines to the file, in NeDB's executor (after a compaction running, never inside it); nothing in memory only. */
  private append(lines: string): Promise<void> {
    if (this.nedb.inMemoryOnly) return Promise.resolve();
    return this.nedb.executor.pushAsync(() => fs.appendFile(this.nedb.persistence.filename, lines, "utf8"), true);
  }

  /**
   * Text-search signatures for the entries that have none (those loaded at
   * start, those stored since the last search), a chunk per turn of the event loop.
   */
  private signInBackground() {
    if (this.signing) return;
    this.signing = true;
    const step = () => {
      if (!this.stopping && this.index.signSome(SIGN_CHUNK) > 0) setImmediate(step);
      else this.signing = false;
    };
    setImmediate(step);
  }
}
