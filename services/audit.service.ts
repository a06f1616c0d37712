/**
 * The audit log of admin actions: every mutating management request the api
 * answered (services/api/audit-trail.ts) as an entry of a hash chain
 * (lib/audit/chain.ts), kept in the `audit` collection (lib/audit/store.ts).
 * Appends are made one at a time in this process, each on the newest entry
 * the store has then; on PostgreSQL under an advisory lock every router takes,
 * elsewhere (MongoDB shared by routers) a collision on the seq is tried again.
 * `verify` walks the whole chain in pages.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import {
  chainEntry,
  CHAIN_START,
  verifyChain,
  type AuditEntry,
  type AuditRecord,
  type ChainCheck,
  type ChainLink,
} from "../lib/audit/chain";
import { AdapterAuditStore, isDuplicate, PgAuditStore, type AuditStore, type DocAdapter } from "../lib/audit/store";
import { DocumentAdapter } from "../lib/db/document-adapter";
import { dbMixin } from "../mixins/db.mixin";

interface Vars {
  store: AuditStore;
  /** The append being made: the next waits for it. */
  pending: Promise<unknown>;
  adapter: DocAdapter;
}

interface Methods {
  inTurn<T>(work: () => Promise<T>): Promise<T>;
}

type This = Service & Vars & Methods;

export const MAX_LIST = 500;
const VERIFY_PAGE = 1000;
/** Appends tried again after another router took the seq (MongoDB). */
const APPEND_TRIES = 5;

interface ListParams {
  limit?: number;
  before_seq?: number;
  actor?: string;
  action?: string;
}

const seqParam = { type: "number", integer: true, min: 1, convert: true, optional: true };
const text = (max: number) => ({ type: "string", max });

const AuditService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "audit",
  mixins: [dbMixin("audit")],

  actions: {
    /** Appends one entry (the api calls it once a request was answered); the entry as stored. */
    append: {
      visibility: "public",
      params: {
        ts: text(64),
        actor: { ...text(256), nullable: true },
        actor_role: { ...text(64), nullable: true },
        ip: text(256),
        action: text(2048),
        target: { ...text(4096), nullable: true },
        status: { type: "number", integer: true, min: 100, max: 999 },
        changes: { type: "any", optional: true },
      },
      handler(this: This, ctx: Context<AuditRecord>): Promise<AuditEntry> {
        const p = ctx.params;
        const record: AuditRecord = {
          ts: p.ts,
          actor: p.actor ?? null,
          actor_role: p.actor_role ?? null,
          ip: p.ip,
          action: p.action,
          target: p.target ?? null,
          status: p.status,
          changes: p.changes ?? null,
        };
        return this.inTurn(async () => {
          for (let tries = 1; ; tries++) {
            try {
              return await this.store.append((last) => chainEntry(record, last));
            } catch (err) {
              if (!isDuplicate(err) || tries >= APPEND_TRIES) throw err;
            }
          }
        });
      },
    },

    /** Entries newest first: at most `limit` (default 100, ≤ 500), before `before_seq`, of `actor`, with `action` in theirs. */
    list: {
      visibility: "public",
      params: {
        limit: { ...seqParam, max: MAX_LIST },
        before_seq: seqParam,
        actor: { ...text(256), optional: true },
        action: { ...text(2048), optional: true },
      },
      async handler(this: This, ctx: Context<ListParams>): Promise<{ entries: AuditEntry[] }> {
        const { limit = 100, before_seq, actor, action } = ctx.params;
        return { entries: await this.store.page({ limit, beforeSeq: before_seq, actor, action }) };
      },
    },

    /** The whole chain checked, oldest first: `{ok, count, head}`, or the first entry that fails and why. */
    verify: {
      visibility: "public",
      async handler(this: This): Promise<ChainCheck> {
        let link: ChainLink = CHAIN_START;
        let count = 0;
        for (;;) {
          const page = await this.store.after(link.seq, VERIFY_PAGE);
          const check = verifyChain(page, link);
          if (!check.ok) return check;
          count += check.count;
          const last = page[page.length - 1];
          if (last) link = { seq: last.seq, hash: last.hash };
          if (page.length < VERIFY_PAGE) return { ok: true, count, head: count ? link.hash : null };
        }
      },
    },
  },

  methods: {
    inTurn<T>(this: This, work: () => Promise<T>): Promise<T> {
      const run = this.pending.then(work);
      this.pending = run.catch(() => undefined);
      return run;
    },
  },

  created(this: This) {
    this.pending = Promise.resolve();
  },

  // after moleculer-db's `started` (mixins' first), so the adapter is connected
  started(this: This) {
    const adapter = this.adapter as unknown;
    this.store =
      adapter instanceof DocumentAdapter ? new PgAuditStore(adapter.db) : new AdapterAuditStore(this.adapter);
  },
};

export default AuditService;
