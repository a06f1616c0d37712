/**
 * Usage as daily roll-ups: per UTC day, API key, user, model and node, the
 * requests, errors, tokens in and out and a latency histogram
 * (lib/usage/rollup.ts), kept in `usage_daily` (lib/usage/store.ts, on
 * PostgreSQL lib/usage/pg-store.ts) past history's retention.
 *
 * The history service rolls up the records its store reports stored (each
 * once: a record the stream redelivers is stored once and reported once) and
 * sends them as the `usage.rows` event; one usage service takes each (the
 * local one when there is one). Rows are summed here and added to the store
 * every FLUSH_MS, the stored sums only ever growing, so any number of routers
 * add to the same rows. What is summed here and not added yet is lost if the
 * process dies (never counted twice); on stop it is written, after the
 * history service of this process has written and handed on its last records.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { storageConfig } from "../lib/config";
import { routerCore } from "../lib/core/router-core";
import { nextTurn } from "../lib/history/store";
import { apiError } from "../lib/openai/errors";
import { PgUsageStore } from "../lib/usage/pg-store";
import {
  GROUP_BY,
  isUsageRow,
  mergeRows,
  summarize,
  type GroupBy,
  type UsageReport,
  type UsageRows,
} from "../lib/usage/rollup";
import { AdapterUsageStore, UsageStoreUnavailable, type UsageAdapter, type UsageStore } from "../lib/usage/store";
import { dbMixin } from "../mixins/db.mixin";

interface Vars {
  /** moleculer-db's adapter (unused with PostgreSQL). */
  adapter: unknown;
  store: UsageStore | null;
  /** Rows summed since the last write. */
  pending: UsageRows;
  flushing: Promise<void> | null;
  flushTimer: NodeJS.Timeout | null;
  upkeepTimer: NodeJS.Timeout | null;
  stopping: boolean;
  /** Since when the store could not be reached (ms epoch), or null. */
  unreachableSince: number | null;
}

interface Methods {
  add(rows: unknown): void;
  flush(): Promise<void>;
  later(ms: number): void;
  ready(): UsageStore;
}

type This = Service & Vars & Methods;

interface ReportParams {
  group_by: GroupBy;
  from: string;
  to: string;
  user_id?: string;
}

/** How often summed rows are added to the store, and tried again while it cannot be reached. */
const FLUSH_MS = 5000;
const RETRY_MS = 5000;
const HOUR_MS = 3_600_000;
/** How long a stop waits for the history service of this process to hand on its last records. */
const HISTORY_WAIT_MS = 30_000;

const day = { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/ };

const UsageService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "usage",
  mixins: [dbMixin("usage_daily")],

  events: {
    "usage.rows"(this: This, ctx: Context<{ rows?: unknown }>) {
      this.add(ctx.params.rows);
    },
  },

  actions: {
    /** The rows of `from`…`to` (UTC days, both included), of one user's keys when given, summed per `group_by`. */
    report: {
      visibility: "public",
      params: {
        group_by: { type: "enum", values: [...GROUP_BY] },
        from: day,
        to: day,
        user_id: { type: "string", max: 256, optional: true },
      },
      async handler(this: This, ctx: Context<ReportParams>): Promise<UsageReport> {
        const { group_by, from, to, user_id } = ctx.params;
        const rows = await this.ready().rows({ from, to, userId: user_id });
        return { group_by, from, to, rows: summarize(rows, group_by) };
      },
    },
    /** Adds what is summed now to the store. */
    flush: {
      visibility: "public",
      async handler(this: This) {
        await this.flush();
        return { ok: true };
      },
    },
  },

  methods: {
    add(this: This, rows: unknown) {
      if (!Array.isArray(rows)) return;
      const valid = rows.filter(isUsageRow);
      if (valid.length < rows.length) this.logger.warn(`usage: ${rows.length - valid.length} malformed row(s) dropped`);
      mergeRows(this.pending, valid);
      this.later(FLUSH_MS);
    },

    later(this: This, ms: number) {
      if (!this.stopping && this.pending.size) this.flushTimer ??= setTimeout(() => void this.flush(), ms);
    },

    ready(this: This) {
      if (!this.store) throw apiError(503, "Usage is not available right now.", "usage_unavailable");
      return this.store;
    },

    async flush(this: This) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      // one write at a time
      while (this.flushing) await this.flushing;
      const store = this.store;
      // not open yet: the rows wait for it
      if (!store) return this.later(FLUSH_MS);
      if (!this.pending.size) return;
      const rows = [...this.pending.values()];
      this.pending = new Map();
      this.flushing = store
        .add(rows)
        .then(() => {
          if (this.unreachableSince === null) return;
          this.logger.info("usage: the store is back; the totals kept meanwhile are added");
          this.unreachableSince = null;
        })
        .catch((err: Error) => {
          if (!(err instanceof UsageStoreUnavailable)) {
            this.logger.error(`usage: ${rows.length} roll-up row(s) not added: ${err.message}`);
            return;
          }
          if (this.unreachableSince === null) {
            this.unreachableSince = Date.now();
            this.logger.warn(`usage: ${err.message}; the totals are kept and added when it is back`);
          }
          // the sums are the same whichever comes first
          mergeRows(this.pending, err.rows);
          this.later(RETRY_MS);
        })
        .finally(() => (this.flushing = null));
      await this.flushing;
    },
  },

  created(this: This) {
    this.store = null;
    this.pending = new Map();
    this.flushing = null;
    this.flushTimer = null;
    this.upkeepTimer = null;
    this.stopping = false;
    this.unreachableSince = null;
  },

  // after moleculer-db's `started` (mixins' first), so the adapter is connected
  async started(this: This) {
    const { databaseUrl } = storageConfig();
    const store = databaseUrl
      ? await PgUsageStore.open(databaseUrl, this.logger)
      : await AdapterUsageStore.open(this.adapter as UsageAdapter, this.logger);
    if (this.stopping) return void (await store.close());
    this.store = store;
    this.upkeepTimer = setInterval(
      () => void store.maintain().catch((err: Error) => this.logger.error(`usage: upkeep failed: ${err.message}`)),
      HOUR_MS,
    );
    void this.flush();
  },

  async stopped(this: This) {
    this.stopping = true;
    if (this.upkeepTimer) clearInterval(this.upkeepTimer);
    // the history service beside this one writes what it holds as it stops, and hands it on here
    const history = routerCore(this.broker).history?.stopped;
    if (history) {
      const timeout = new AbortController();
      await Promise.race([
        history,
        sleep(HISTORY_WAIT_MS, undefined, { signal: timeout.signal }).catch(() => undefined),
      ]);
      timeout.abort();
    }
    await nextTurn();
    await this.flush();
    if (this.pending.size) this.logger.warn(`usage: ${this.pending.size} roll-up row(s) not added (no store)`);
    const store = this.store;
    this.store = null;
    await store?.close();
  },
};

export default UsageService;
