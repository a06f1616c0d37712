/**
 * Request history: one record per inference request, sent by the api as a
 * `history.record` event (the client never waits for it) and written here in
 * batches. Records older than LLM_ROUTER_HISTORY_RETENTION_DAYS are purged at
 * start and hourly; the embedded store also keeps at most
 * LLM_ROUTER_HISTORY_MAX_RECORDS. What is buffered is written on stop.
 *
 * The storage is a HistoryStore (lib/history/store.ts), picked at start
 * (lib/history/stores.ts): with LLM_ROUTER_DATABASE_URL, PostgreSQL (the
 * moleculer-db adapter of the mixin is then unused); else the embedded store
 * (NeDB), whose lists, counts, keyset pages, stats and retention read an
 * in-memory index of light entries; with MONGO_URI, MongoDB on its indexes.
 *
 * Routers as peers (a shared database and NATS with JetStream): records go
 * through a durable stream instead (lib/history/stream.ts). The api of this
 * process publishes each one before its client gets the last bytes, and this
 * service's writer (lib/history/stream-writer.ts) pulls batches from the
 * consumer all routers share, acknowledging them once written.
 *
 * The records a store reports stored (once each: not a redelivered one) are
 * rolled up and sent on as `usage.rows` to the usage service's daily totals.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { clusterConfig, historyConfig, storageConfig, type HistoryConfig, type StorageConfig } from "../lib/config";
import type { HistoryRecord, RecordEvent } from "../lib/history/record";
import { parseFilter, type HistoryFilter } from "../lib/history/query";
import { recordDoc, StoreUnavailable, type Cursor, type Doc, type HistoryStore } from "../lib/history/store";
import { openHistoryStore } from "../lib/history/stores";
import { HistoryStream } from "../lib/history/stream";
import { StreamWriter } from "../lib/history/stream-writer";
import { apiError } from "../lib/openai/errors";
import { dbMixin } from "../mixins/db.mixin";
import { routerCore, type HistorySink } from "../lib/core/router-core";
import { rollUp } from "../lib/usage/rollup";

interface Settings {
  history: HistoryConfig;
}

interface Vars {
  /** moleculer-db's adapter (unused with PostgreSQL). */
  adapter: unknown;
  storage: Pick<StorageConfig, "databaseUrl" | "mongoUri">;
  /** The NATS server records go through (a shared database, a NATS transporter, the stream not turned off), or null. */
  streamUrl: string | null;
  /** What the api of this process hands finished requests to. */
  sink: HistorySink;
  stream: HistoryStream | null;
  writer: StreamWriter | null;
  /** Since when publishing to the stream fails (records are then written here), or null. */
  streamFailingSince: number | null;
  /** Commits waiting for the stream's acknowledgement (waited for on stop). */
  committing: Set<Promise<void>>;
  buffer: Doc[];
  flushing: Promise<void> | null;
  flushTimer: NodeJS.Timeout | null;
  purgeTimer: NodeJS.Timeout | null;
  /** The store, once open (`started`) and until closed (`stopped`). */
  store: HistoryStore | null;
  opening: Promise<HistoryStore> | null;
  stopping: boolean;
  /** Since when the store could not be reached (ms epoch), or null. */
  unreachableSince: number | null;
  /** Resolves `sink.stopped`. */
  markStopped(): void;
}

interface Methods {
  accept(rec: RecordEvent | HistoryRecord): void;
  commit(rec: RecordEvent): Promise<void>;
  openStream(store: HistoryStore): Promise<void>;
  flush(): Promise<void>;
  keepForLater(err: StoreUnavailable): void;
  ready(): HistoryStore;
  purge(now: number): Promise<{ expired: number; capped: number }>;
  counted(docs: Doc[]): void;
}

type This = Service<Settings> & Vars & Methods;

/** Records buffered before a flush starts at once. */
const BATCH = 200;
const FLUSH_MS = 500;
/** While the store is down: records kept at most, and how often it is tried again. */
const MAX_WAITING = 100_000;
const RETRY_MS = 2000;
const HOUR_MS = 3_600_000;
/** How long `flush` waits for the stream's records to be written. */
const STREAM_FLUSH_MS = 15_000;

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
        const { records, total, estimated } = await this.ready().list(f, (f.page - 1) * f.per_page, f.per_page);
        const page = { records, total_count: total, page: f.page, per_page: f.per_page };
        return estimated ? { ...page, total_is_estimate: true } : page;
      },
    },
    get: {
      visibility: "public",
      params: { id: { type: "string", max: 128 } },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const id = ctx.params.id;
        const rec = await this.ready().get(id);
        if (!rec) throw apiError(404, `No request record with id '${id}'.`, "record_not_found");
        return rec;
      },
    },
    /** The next `limit` records after a (ts, id) cursor, newest first: exports page with it. */
    page: {
      visibility: "public",
      async handler(this: This, ctx: Context<{ filter: HistoryFilter; after?: Cursor; limit: number }>) {
        const { filter, after, limit } = ctx.params;
        return this.ready().page(filter, after, limit);
      },
    },
    /** Per-minute counts, latency percentiles and tokens/s over the last hour. */
    stats: {
      visibility: "public",
      async handler(this: This) {
        return this.ready().stats(Date.now());
      },
    },
    /** How far behind the store is: records not written yet, and since when it cannot be reached (null: it can). */
    backlog: {
      visibility: "public",
      async handler(this: This) {
        const since = this.writer?.unreachableSince ?? this.unreachableSince;
        const inStream = this.stream ? await this.stream.backlog().catch(() => null) : 0;
        return {
          via: this.stream ? "stream" : "process",
          // null: the stream's count could not be read just now
          waiting: inStream === null ? null : inStream + this.buffer.length,
          unreachable_since: since === null ? null : new Date(since).toISOString(),
        };
      },
    },
    /** Writes what is buffered now and, with the stream, waits (a while) until what it holds is written. */
    flush: {
      visibility: "public",
      async handler(this: This) {
        await this.flush();
        const stream = this.stream;
        const deadline = Date.now() + STREAM_FLUSH_MS;
        while (stream && (await stream.backlog()) > 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
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
     * directly; others send the `history.record` event.
     */
    accept(this: This, rec: RecordEvent | HistoryRecord) {
      this.buffer.push(recordDoc(rec));
      if (this.buffer.length >= BATCH) void this.flush();
      else this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_MS);
    },

    /**
     * With the stream: puts a record in it, resolved once JetStream has it
     * (the api holds the answer's last bytes until then). A record too large
     * for a NATS message, or one the stream does not take, is written here.
     */
    async commit(this: This, rec: RecordEvent) {
      try {
        if (this.stream && (await this.stream.publish(rec))) {
          if (this.streamFailingSince !== null) {
            this.logger.info("history: the stream takes records again");
            this.streamFailingSince = null;
          }
          return;
        }
      } catch (err) {
        if (this.streamFailingSince === null) {
          this.streamFailingSince = Date.now();
          this.logger.warn(`history: the stream did not take a record (${(err as Error).message}); written here`);
        }
      }
      this.accept(rec);
    },

    /** Opens the stream (when configured) and starts this router's writer on it. */
    async openStream(this: This, store: HistoryStore) {
      if (!this.streamUrl) return;
      const { streamMaxBytes } = this.settings.history;
      const stream = await HistoryStream.open({
        url: this.streamUrl,
        namespace: clusterConfig().namespace,
        maxBytes: streamMaxBytes,
        name: `llm-router history (${this.broker.nodeID})`,
        log: this.logger,
      });
      if (!stream) {
        this.logger.warn(
          "history: the NATS server has no JetStream: each router writes its own records " +
            "(a router that dies loses what it had not written yet). Start nats-server with -js.",
        );
        return;
      }
      if (this.stopping) return void (await stream.close());
      this.stream = stream;
      this.writer = new StreamWriter(stream, { write: (docs) => store.insert(docs), log: this.logger });
      this.writer.start();
      this.sink.commit = (rec) => {
        const done = this.commit(rec);
        this.committing.add(done);
        void done.finally(() => this.committing.delete(done));
        return done;
      };
      this.logger.info(`history: records go through the JetStream stream ${stream.stream}`);
    },

    /** The open store (actions are served only between `started` and `stopped`). */
    ready(this: This) {
      if (!this.store) throw apiError(503, "Request history is not available right now.", "history_unavailable");
      return this.store;
    },

    async flush(this: This) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      // one write at a time, in order
      while (this.flushing) await this.flushing;
      const store = this.store;
      if (!store) {
        // not open yet (the store opens in `started`): the records wait for it
        if (this.buffer.length && !this.stopping) this.flushTimer = setTimeout(() => void this.flush(), FLUSH_MS);
        return;
      }
      const batch = this.buffer.splice(0);
      if (!batch.length) return;
      this.flushing = store
        .insert(batch)
        .then(() => {
          if (this.unreachableSince !== null) {
            this.logger.info(`history: the store is back; records kept meanwhile are written`);
            this.unreachableSince = null;
          }
        })
        .catch((err: unknown) => {
          if (!(err instanceof StoreUnavailable)) throw err;
          this.keepForLater(err);
        })
        .finally(() => (this.flushing = null));
      await this.flushing;
    },

    /** The store is down: its records wait (up to MAX_WAITING, oldest dropped first) and are tried again soon. */
    keepForLater(this: This, err: StoreUnavailable) {
      if (this.unreachableSince === null) {
        this.unreachableSince = Date.now();
        this.logger.warn(`history: ${err.message}; records are kept and written when it is back`);
      }
      this.buffer.unshift(...err.unwritten);
      const over = this.buffer.length - MAX_WAITING;
      if (over > 0) {
        this.buffer.splice(0, over);
        this.logger.error(`history: ${over} record(s) dropped: more than ${MAX_WAITING} waited for the store`);
      }
      if (!this.stopping) this.flushTimer ??= setTimeout(() => void this.flush(), RETRY_MS);
    },

    purge(this: This, now: number) {
      return this.ready().purge(now);
    },

    /** Records just stored, rolled up for the usage service (services/usage.service.ts), which adds them up. */
    counted(this: This, docs: Doc[]) {
      const lost = (err: unknown) =>
        this.logger.warn(`history: the usage of ${docs.length} record(s) not counted: ${(err as Error)?.message}`);
      try {
        this.broker.emit("usage.rows", { rows: rollUp(docs) }).catch(lost);
      } catch (err) {
        lost(err);
      }
    },
  },

  created(this: This) {
    // configuration is read now, when the service is created, not when this file is imported
    this.settings = { ...this.settings, history: historyConfig() };
    const { databaseUrl, mongoUri } = storageConfig();
    this.storage = { databaseUrl, mongoUri };
    const { transporter } = clusterConfig();
    const shared = Boolean(databaseUrl || mongoUri);
    const nats = transporter !== undefined && /^(nats|tls):/.test(transporter);
    this.streamUrl = shared && nats && this.settings.history.stream === "auto" ? transporter : null;
    // the api of this process hands finished requests straight to `accept` (or, with the stream, to `commit`)
    this.sink = {
      accept: (rec) => this.accept(rec),
      stopped: new Promise<void>((resolve) => (this.markStopped = resolve)),
    };
    routerCore(this.broker).history = this.sink;
    this.stream = null;
    this.writer = null;
    this.streamFailingSince = null;
    this.committing = new Set();
    this.buffer = [];
    this.flushing = null;
    this.flushTimer = null;
    this.purgeTimer = null;
    this.store = null;
    this.opening = null;
    this.stopping = false;
    this.unreachableSince = null;
  },

  async started(this: This) {
    const opts = { history: this.settings.history, log: this.logger, written: (docs: Doc[]) => this.counted(docs) };
    this.opening = openHistoryStore(this.storage, this.adapter, opts);
    const store = await this.opening;
    // a stop during start (SIGTERM while a large store loads) closes the store: no purge under it
    if (this.stopping) return;
    this.store = store;
    await store.purge(Date.now()).catch((err: Error) => {
      if (!this.stopping) throw err;
    });
    if (this.stopping) return;
    await this.openStream(store).catch((err: Error) =>
      this.logger.error(
        `history: the JetStream stream could not be opened (${err.message}); each router writes its own`,
      ),
    );
    this.purgeTimer = setInterval(
      () =>
        void this.purge(Date.now()).catch((err: Error) => this.logger.error(`history: purge failed: ${err.message}`)),
      HOUR_MS,
    );
    if (this.buffer.length) void this.flush();
  },

  async stopped(this: This) {
    try {
      this.stopping = true;
      if (this.purgeTimer) clearInterval(this.purgeTimer);
      // records of requests still ending are written here; the stream's wait for another writer
      delete this.sink.commit;
      await Promise.allSettled([...this.committing]);
      await this.writer?.stop();
      await this.stream?.close();
      // a store still opening is waited for: what is buffered goes into it, then it closes
      this.store ??= this.opening ? await this.opening.catch(() => null) : null;
      await this.flush();
      if (this.buffer.length) this.logger.warn(`history: ${this.buffer.length} record(s) not written (no store)`);
      const store = this.store;
      this.store = null;
      await store?.close();
    } finally {
      // what was written last has been handed on: the usage service may write its totals and stop
      this.markStopped();
    }
  },
};

export default HistoryService;
