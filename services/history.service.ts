/**
 * Request history: one record per inference request, sent by the api as a
 * `history.record` event (the client never waits for it) and written here in
 * batches. Records older than LLM_ROUTER_HISTORY_RETENTION_DAYS are purged at
 * start and hourly; the embedded store also keeps at most
 * LLM_ROUTER_HISTORY_MAX_RECORDS. What is buffered is written on stop.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { historyConfig, type HistoryConfig } from "../lib/config";
import type { HistoryRecord } from "../lib/history/record";
import { parseFilter, searchText, storeQuery, type HistoryFilter } from "../lib/history/query";
import { hourStats, type StatSample } from "../lib/history/stats";
import { apiError } from "../lib/openai/errors";
import { dbMixin } from "../mixins/db.mixin";

type Doc = HistoryRecord & { _id?: unknown; search_text: string };

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
  /** Records stored, as of the last count (the cap is checked against it after each write). */
  stored: number;
  adapter: {
    find(q: { query?: object; sort?: string[]; offset?: number; limit?: number }): Promise<Doc[]>;
    findOne(q: object): Promise<Doc | null>;
    count(q: { query?: object }): Promise<number>;
    insertMany(docs: Doc[]): Promise<unknown>;
    removeMany(query: object): Promise<number>;
  };
}

interface Methods {
  count(query: object): Promise<number>;
  flush(): Promise<void>;
  purge(now: number, keep?: number): Promise<{ expired: number; capped: number }>;
}

type This = Service<Settings> & Vars & Methods;

const BATCH = 200;
const FLUSH_MS = 500;
const HOUR_MS = 3_600_000;

/** A record as clients see it. */
function view(d: Doc): HistoryRecord {
  const { _id: _omit, search_text: _text, ...rec } = d;
  void _omit;
  void _text;
  return rec;
}

const HistoryService: ServiceSchema<Settings, Methods, Vars> = {
  name: "history",
  mixins: [dbMixin("history")],

  settings: {
    history: historyConfig(),
    capped: !process.env.MONGO_URI,
  },

  events: {
    "history.record"(this: This, ctx: Context<HistoryRecord>) {
      const rec = ctx.params;
      this.buffer.push({ ...rec, search_text: searchText(rec.request_body, rec.response_body) });
      if (this.buffer.length >= BATCH) void this.flush();
      else this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_MS);
    },
  },

  actions: {
    /** A page of records, newest first, as the seed's dashboard API answered it. */
    list: {
      visibility: "public",
      async handler(this: This, ctx: Context<{ query: unknown }>) {
        const f = parseFilter(ctx.params.query);
        const query = storeQuery(f);
        const [docs, total] = await Promise.all([
          this.adapter.find({ query, sort: ["-ts"], offset: (f.page - 1) * f.per_page, limit: f.per_page }),
          this.count(query),
        ]);
        return { records: docs.map(view), total_count: total, page: f.page, per_page: f.per_page };
      },
    },
    get: {
      visibility: "public",
      params: { id: { type: "string", max: 128 } },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const doc = await this.adapter.findOne({ id: ctx.params.id });
        if (!doc) throw apiError(404, `No request record with id '${ctx.params.id}'.`, "record_not_found");
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
        const base = storeQuery(ctx.params.filter);
        const after = ctx.params.after;
        const query = after
          ? { $and: [base, { $or: [{ ts: { $lt: after.ts } }, { ts: after.ts, id: { $lt: after.id } }] }] }
          : base;
        const docs = await this.adapter.find({ query, sort: ["-ts", "-id"], limit: ctx.params.limit });
        return docs.map(view);
      },
    },
    /** Per-minute counts, latency percentiles and tokens/s over the last hour. */
    stats: {
      visibility: "public",
      async handler(this: This) {
        const now = Date.now();
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
     * NeDB's own count: moleculer-db's NeDB adapter counts by copying every
     * matching document (about 15 times slower at 100,000 records).
     */
    count(this: This, query: object) {
      const db = (this.adapter as { db?: { countAsync?(q: object): Promise<number> } }).db;
      return db?.countAsync ? db.countAsync(query) : this.adapter.count({ query });
    },

    async flush(this: This) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      // one write at a time, in order
      while (this.flushing) await this.flushing;
      const batch = this.buffer.splice(0);
      if (!batch.length) return;
      this.flushing = this.adapter
        .insertMany(batch)
        .then(async () => {
          this.stored += batch.length;
          // past the cap, down to 95 % of it: a full store is not trimmed on every write
          const cap = this.settings.history.maxRecords;
          if (this.settings.capped && this.stored > cap) await this.purge(Date.now(), Math.floor(cap * 0.95));
        })
        .catch((err: Error) => this.logger.error(`history: ${batch.length} record(s) not written: ${err.message}`))
        .finally(() => (this.flushing = null));
      await this.flushing;
    },

    async purge(this: This, now: number, keep = this.settings.history.maxRecords) {
      const cutoff = now - this.settings.history.retentionDays * 86_400_000;
      const expired = await this.adapter.removeMany({ ts: { $lt: cutoff } });
      let capped = 0;
      if (this.settings.capped) {
        const excess = (await this.count({})) - keep;
        if (excess > 0) {
          const oldest = await this.adapter.find({ sort: ["ts"], limit: excess });
          capped = await this.adapter.removeMany({ _id: { $in: oldest.map((d) => d._id) } });
        }
      }
      this.stored = await this.count({});
      if (expired) {
        // NeDB appends removals to its file: rewrite it so the file shrinks too (MongoDB has no such call).
        // Only for the hourly retention purge: rewriting the whole file on every trim at the cap stalls the router.
        await (this.adapter as { db?: { compactDatafileAsync?(): Promise<void> } }).db?.compactDatafileAsync?.();
      }
      if (expired || capped) {
        this.logger.info(`history: purged ${expired} expired and ${capped} over-cap record(s)`);
      }
      return { expired, capped };
    },
  },

  created(this: This) {
    this.buffer = [];
    this.flushing = null;
    this.flushTimer = null;
    this.purgeTimer = null;
    this.stored = 0;
  },

  async started(this: This) {
    // range filters and retention on `ts` use an index in NeDB too (MongoDB: create it in the database)
    await (this.adapter as { db?: { ensureIndexAsync?(o: object): Promise<void> } }).db?.ensureIndexAsync?.({
      fieldName: "ts",
    });
    await this.purge(Date.now());
    this.purgeTimer = setInterval(() => void this.purge(Date.now()), HOUR_MS);
  },

  async stopped(this: This) {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    await this.flush();
  },
};

export default HistoryService;
