/**
 * Request history: one record per inference request, sent by the api as a
 * `history.record` event (the client never waits for it) and written here in
 * batches. Records older than LLM_ROUTER_HISTORY_RETENTION_DAYS are purged at
 * start and hourly; the embedded store also keeps at most
 * LLM_ROUTER_HISTORY_MAX_RECORDS. What is buffered is written on stop.
 *
 * The embedded store (NeDB) is the persistence only: lists, counts, keyset
 * pages, stats and retention read an in-memory index of light entries
 * (lib/history/record-index.ts) and fetch just the page's documents by `_id`.
 * With MONGO_URI the queries go to MongoDB, on its indexes.
 * Writes and removals go to the store in small chunks with a turn of the event
 * loop between them, so a flush never holds up requests for long.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { historyConfig, storageConfig, type HistoryConfig } from "../lib/config";
import type { HistoryRecord, RecordEvent } from "../lib/history/record";
import { parseFilter, storeQuery, textOf, type HistoryFilter } from "../lib/history/query";
import { compactInSlices, docsById, isNedb, type NedbStore } from "../lib/history/nedb";
import { entryOf, HistoryIndex, type IndexEntry } from "../lib/history/record-index";
import { hourStats, type StatSample } from "../lib/history/stats";
import { apiError } from "../lib/openai/errors";
import { dbMixin } from "../mixins/db.mixin";
import { routerCore } from "../lib/core/router-core";

/**
 * A stored record. Bodies are kept as JSON text: a store refuses field names
 * such as `$ref` or `a.b`, which JSON schemas in tool calls carry, and a
 * record must never be lost for its body. (Records stored before kept them
 * as objects in `request_body`/`response_body`.)
 */
type Doc = Omit<HistoryRecord, "request_body" | "response_body"> & {
  _id?: unknown;
  /** With MongoDB: the text `q` searches (see `textOf`). */
  search_text?: string;
  request_json?: string;
  response_json?: string;
  request_body?: unknown;
  response_body?: unknown;
};

const parsed = (json: string | undefined, old: unknown) => (json === undefined ? (old ?? null) : JSON.parse(json));

interface Settings {
  history: HistoryConfig;
  /** Whether the record cap applies (the embedded store). */
  capped: boolean;
}

interface Vars {
  buffer: Doc[];
  flushing: Promise<void> | null;
  flushTimer: NodeJS.Timeout | null;
  purgeTimer: NodeJS.Timeout | null;
  /** The embedded store's index, and the NeDB datastore under it; null with MongoDB. */
  index: HistoryIndex | null;
  nedb: NedbStore | null;
  /** Records removed from the embedded store since its file was last compacted. */
  removedSinceCompaction: number;
  stopping: boolean;
  adapter: {
    db?: { countAsync?(q: object): Promise<number> };
    collection?: { createIndex(spec: object): Promise<unknown> };
    find(q: { query?: object; sort?: string[]; offset?: number; limit?: number }): Promise<Doc[]>;
    findOne(q: object): Promise<Doc | null>;
    count(q: { query?: object }): Promise<number>;
    insertMany(docs: Doc[]): Promise<Doc[]>;
    removeMany(query: object): Promise<number>;
  };
}

interface Methods {
  accept(rec: RecordEvent | HistoryRecord): void;
  count(query: object): Promise<number>;
  docsOf(entries: IndexEntry[]): Promise<HistoryRecord[]>;
  flush(): Promise<void>;
  write(batch: Doc[]): Promise<void>;
  purge(now: number, keep?: number): Promise<{ expired: number; capped: number }>;
  signInBackground(): void;
}

type This = Service<Settings> & Vars & Methods;

/** Records buffered before a flush starts at once. */
const BATCH = 200;
const FLUSH_MS = 500;
const HOUR_MS = 3_600_000;
/** Records a store call inserts (about 2 ms of NeDB work), and ids one removal takes. */
const WRITE_CHUNK = 25;
const REMOVE_CHUNK = 100;
/** Signatures computed per turn of the event loop while the index catches up after start. */
const SIGN_CHUNK = 2000;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A record as clients see it. */
function view(d: Doc): HistoryRecord {
  const { _id: _omit, search_text: _text, request_json, response_json, request_body, response_body, ...rec } = d;
  void _omit;
  void _text;
  return {
    ...rec,
    request_body: parsed(request_json, request_body),
    response_body: parsed(response_json, response_body),
  };
}

const HistoryService: ServiceSchema<Settings, Methods, Vars> = {
  name: "history",
  mixins: [dbMixin("history")],

  events: {
    "history.record"(this: This, ctx: Context<RecordEvent | HistoryRecord>) {
      this.accept(ctx.params);
    },
    // a gateway's requests, in batches (services/api/recording.ts)
    "history.records"(this: This, ctx: Context<{ records: Array<RecordEvent | HistoryRecord> }>) {
      for (const rec of ctx.params.records ?? []) this.accept(rec);
    },
  },

  actions: {
    /** A page of records, newest first, as the seed's dashboard API answered it. */
    list: {
      visibility: "public",
      async handler(this: This, ctx: Context<{ query: unknown }>) {
        const f = parseFilter(ctx.params.query);
        const offset = (f.page - 1) * f.per_page;
        const page = { page: f.page, per_page: f.per_page };
        if (this.index) {
          const { entries, total } = this.index.select(f, offset, f.per_page);
          return { records: await this.docsOf(entries), total_count: total, ...page };
        }
        const query = storeQuery(f);
        const [docs, total] = await Promise.all([
          this.adapter.find({ query, sort: ["-ts", "-id"], offset, limit: f.per_page }),
          this.count(query),
        ]);
        return { records: docs.map(view), total_count: total, ...page };
      },
    },
    get: {
      visibility: "public",
      params: { id: { type: "string", max: 128 } },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const id = ctx.params.id;
        let doc: Doc | null | undefined = null;
        if (!this.index || !this.nedb) doc = await this.adapter.findOne({ id });
        else {
          const e = this.index.get(id);
          if (e) doc = docsById<Doc>(this.nedb, [e._id]).get(e._id);
        }
        if (!doc) throw apiError(404, `No request record with id '${id}'.`, "record_not_found");
        return view(doc);
      },
    },
    /** The next `limit` records after a (ts, id) cursor, newest first: exports page with it. */
    page: {
      visibility: "public",
      async handler(
        this: This,
        ctx: Context<{ filter: HistoryFilter; after?: { ts: number; id: string }; limit: number }>,
      ) {
        const { filter, after, limit } = ctx.params;
        if (this.index) return this.docsOf(this.index.after(filter, after, limit));
        const base = storeQuery(filter);
        const query = after
          ? { $and: [base, { $or: [{ ts: { $lt: after.ts } }, { ts: after.ts, id: { $lt: after.id } }] }] }
          : base;
        const docs = await this.adapter.find({ query, sort: ["-ts", "-id"], limit });
        return docs.map(view);
      },
    },
    /** Per-minute counts, latency percentiles and tokens/s over the last hour. */
    stats: {
      visibility: "public",
      async handler(this: This) {
        const now = Date.now();
        if (this.index) {
          return { ...hourStats(this.index.since(now - HOUR_MS), now), total_records: this.index.size };
        }
        const docs = await this.adapter.find({ query: { ts: { $gte: now - HOUR_MS } } });
        return { ...hourStats(docs as StatSample[], now), total_records: await this.count({}) };
      },
    },
    /** Writes what is buffered now (tests and shutdown). */
    flush: {
      visibility: "public",
      async handler(this: This) {
        await this.flush();
        return { ok: true };
      },
    },
    /** Applies retention and the record cap as of `now` (default: the clock). */
    purge: {
      visibility: "public",
      params: { now: { type: "number", optional: true } },
      async handler(this: This, ctx: Context<{ now?: number }>) {
        return this.purge(ctx.params.now ?? Date.now());
      },
    },
  },

  methods: {
    /**
     * Buffers a record for the next write. The api of this process calls it
     * directly; others send the `history.record` event. Bodies come as JSON
     * text (or, from older senders, as objects). The embedded store keeps no
     * search text: its index derives it from the bodies' text; MongoDB
     * searches a stored `search_text`.
     */
    accept(this: This, rec: RecordEvent | HistoryRecord) {
      let doc: Doc;
      if ("request_json" in rec) doc = { ...rec };
      else {
        const { request_body, response_body, ...rest } = rec;
        doc = {
          ...rest,
          request_json: JSON.stringify(request_body ?? null),
          response_json: JSON.stringify(response_body ?? null),
        };
      }
      if (!this.index) doc.search_text = textOf(doc.request_json, doc.response_json);
      // NeDB's own ids cost a crypto call per record; a record's id is a UUID already
      else doc._id = doc.id;
      this.buffer.push(doc);
      if (this.buffer.length >= BATCH) void this.flush();
      else this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_MS);
    },

    /**
     * NeDB's own count: moleculer-db's NeDB adapter counts by copying every
     * matching document (about 15 times slower at 100,000 records).
     */
    count(this: This, query: object) {
      const db = this.adapter.db;
      return db?.countAsync ? db.countAsync(query) : this.adapter.count({ query });
    },

    /** The stored documents of index entries, in their order (read from NeDB's memory by `_id`). */
    async docsOf(this: This, entries: IndexEntry[]) {
      if (!entries.length || !this.nedb) return [];
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
    },

    async flush(this: This) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      // one write at a time, in order
      while (this.flushing) await this.flushing;
      const batch = this.buffer.splice(0);
      if (!batch.length) return;
      this.flushing = this.write(batch).finally(() => (this.flushing = null));
      await this.flushing;
    },

    /** Inserts a batch a chunk at a time, then trims the embedded store past its cap down to 95 % of it. */
    async write(this: This, batch: Doc[]) {
      for (let i = 0; i < batch.length; i += WRITE_CHUNK) {
        if (i) await nextTurn();
        const chunk = batch.slice(i, i + WRITE_CHUNK);
        try {
          const saved = await this.adapter.insertMany(chunk);
          this.index?.add(saved.map(entryOf));
        } catch {
          // a store call is all or nothing: one bad record must not take the others with it
          for (const doc of chunk) {
            try {
              const saved = await this.adapter.insertMany([doc]);
              this.index?.add(saved.map(entryOf));
            } catch (err) {
              this.logger.error(`history: record ${doc.id} not written: ${(err as Error).message}`);
            }
          }
        }
      }
      // a full store is not trimmed on every write
      const cap = this.settings.history.maxRecords;
      if (this.index && this.index.size > cap) {
        await this.purge(Date.now(), Math.floor(cap * 0.95)).catch((err: Error) =>
          this.logger.error(`history: trim failed: ${err.message}`),
        );
      }
    },

    /**
     * Retention, and in the embedded store the cap (`keep` records at most).
     * Called without `keep` (start, hourly, the action), it also compacts the
     * NeDB file if records were removed since the last compaction: NeDB appends
     * removals, and rewriting the whole file on every trim at the cap would
     * stall the router.
     */
    async purge(this: This, now: number, keep?: number) {
      const cutoff = now - this.settings.history.retentionDays * 86_400_000;
      if (!this.index) {
        const expired = await this.adapter.removeMany({ ts: { $lt: cutoff } });
        if (expired) this.logger.info(`history: purged ${expired} expired record(s)`);
        return { expired, capped: 0 };
      }
      const expired = this.index.dropBefore(cutoff);
      const capped = this.index.dropOldest(this.index.size - (keep ?? this.settings.history.maxRecords));
      const gone = [...expired, ...capped];
      for (let i = 0; i < gone.length; i += REMOVE_CHUNK) {
        if (i) await nextTurn();
        const ids = gone.slice(i, i + REMOVE_CHUNK).map((e) => e._id);
        this.removedSinceCompaction += await this.adapter.removeMany({ _id: { $in: ids } });
      }
      if (keep === undefined && this.removedSinceCompaction > 0 && this.nedb) {
        this.removedSinceCompaction = 0;
        await compactInSlices(this.nedb);
      }
      if (gone.length) {
        this.logger.info(`history: purged ${expired.length} expired and ${capped.length} over-cap record(s)`);
      }
      return { expired: expired.length, capped: capped.length };
    },

    /** Text-search signatures for the entries loaded at start, a chunk per turn of the event loop. */
    signInBackground(this: This) {
      const step = () => {
        if (this.stopping || !this.index) return;
        if (this.index.signSome(SIGN_CHUNK) > 0) setImmediate(step);
      };
      setImmediate(step);
    },
  },

  created(this: This) {
    // configuration is read now, when the service is created, not when this file is imported
    this.settings = { ...this.settings, history: historyConfig(), capped: !storageConfig().mongoUri };
    // the api of this process hands finished requests straight to `accept`
    routerCore(this.broker).history = { accept: (rec) => this.accept(rec) };
    this.buffer = [];
    this.flushing = null;
    this.flushTimer = null;
    this.purgeTimer = null;
    this.index = null;
    this.nedb = null;
    this.removedSinceCompaction = 0;
    this.stopping = false;
  },

  async started(this: This) {
    const db = this.adapter.db;
    if (this.settings.capped && isNedb(db)) {
      // the index answers queries: NeDB's own index on ts (created by earlier versions) only costs
      if (db.indexes.ts && db.removeIndexAsync) await db.removeIndexAsync("ts");
      this.nedb = db;
      this.index = new HistoryIndex();
      this.index.load(db.getAllData() as Doc[]);
      this.signInBackground();
    } else if (this.adapter.collection) {
      // MongoDB: lists sort on (ts, id) and retention ranges over ts
      await this.adapter.collection
        .createIndex({ ts: -1, id: -1 })
        .catch((err: Error) => this.logger.warn(`history: no index on ts: ${err.message}`));
    }
    // a stop during start (SIGTERM while a large store loads) may close the store under the purge
    if (this.stopping) return;
    await this.purge(Date.now()).catch((err: Error) => {
      if (!this.stopping) throw err;
    });
    if (this.stopping) return;
    this.purgeTimer = setInterval(
      () =>
        void this.purge(Date.now()).catch((err: Error) => this.logger.error(`history: purge failed: ${err.message}`)),
      HOUR_MS,
    );
  },

  async stopped(this: This) {
    this.stopping = true;
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    await this.flush();
  },
};

export default HistoryService;
