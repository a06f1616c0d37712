/**
 * Stored responses of the Responses API (`store`, the default): the response
 * object, its input items and the conversation before it, kept for
 * `GET /v1/responses/{id}`, its input items, `DELETE` and `previous_response_id`.
 * Kept where history is (the same store: NeDB files, or MongoDB) and as long
 * (LLM_ROUTER_HISTORY_RETENTION_DAYS, purged at start and hourly). Each
 * belongs to the API key (or login) that made it: any other gets a 404.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { historyConfig } from "../lib/config";
import { responseNotFound, type StoredResponse } from "../lib/responses/store";
import { dbMixin } from "../mixins/db.mixin";

type Doc = StoredResponse & { _id?: string };

interface Vars {
  retentionMs: number;
  purgeTimer: NodeJS.Timeout | null;
  adapter: {
    findById(id: string): Promise<Doc | null>;
    insert(doc: Doc): Promise<Doc>;
    updateById(id: string, update: object): Promise<Doc>;
    removeById(id: string): Promise<unknown>;
    removeMany(query: object): Promise<number>;
  };
}

interface Methods {
  /** The response `id` if it is `scope`'s and not expired; null otherwise. */
  find(id: string, scope: string): Promise<Doc | null>;
  purge(now: number): Promise<number>;
}

type This = Service & Vars & Methods;

const HOUR_MS = 3_600_000;
const idParam = { type: "string", min: 1, max: 1024 };
const scopeParam = { type: "string", min: 1, max: 512 };

const ResponsesService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "responses",
  mixins: [dbMixin("responses")],

  actions: {
    /** Keeps a response (again, if its id is there: the same response saved twice stays one). */
    save: {
      visibility: "public",
      params: { record: "object" },
      async handler(this: This, ctx: Context<{ record: StoredResponse }>) {
        const { record } = ctx.params;
        const existing = await this.adapter.findById(record.id);
        if (existing) await this.adapter.updateById(record.id, { $set: record });
        else await this.adapter.insert({ ...record, _id: record.id });
        return { id: record.id };
      },
    },
    /** A stored response of `scope` (404 when it is not there, not theirs, or expired). */
    get: {
      visibility: "public",
      params: { id: idParam, scope: scopeParam },
      async handler(this: This, ctx: Context<{ id: string; scope: string }>) {
        const doc = await this.find(ctx.params.id, ctx.params.scope);
        if (!doc) throw responseNotFound(ctx.params.id);
        const { _id: _omit, ...stored } = doc;
        void _omit;
        return stored;
      },
    },
    remove: {
      visibility: "public",
      params: { id: idParam, scope: scopeParam },
      async handler(this: This, ctx: Context<{ id: string; scope: string }>) {
        const { id, scope } = ctx.params;
        if (!(await this.find(id, scope))) throw responseNotFound(id);
        await this.adapter.removeById(id);
        return { id, object: "response", deleted: true };
      },
    },
    /** Removes the responses past retention as of `now` (default: the clock). */
    purge: {
      visibility: "public",
      params: { now: { type: "number", optional: true } },
      async handler(this: This, ctx: Context<{ now?: number }>) {
        return { expired: await this.purge(ctx.params.now ?? Date.now()) };
      },
    },
  },

  methods: {
    async find(this: This, id: string, scope: string) {
      const doc = await this.adapter.findById(id);
      if (!doc || doc.scope !== scope || doc.ts < Date.now() - this.retentionMs) return null;
      return doc;
    },

    async purge(this: This, now: number) {
      const expired = await this.adapter.removeMany({ ts: { $lt: now - this.retentionMs } });
      if (expired) this.logger.info(`responses: purged ${expired} expired stored response(s)`);
      return expired;
    },
  },

  created(this: This) {
    this.retentionMs = historyConfig().retentionDays * 86_400_000;
    this.purgeTimer = null;
  },

  async started(this: This) {
    await this.purge(Date.now());
    this.purgeTimer = setInterval(
      () =>
        void this.purge(Date.now()).catch((err: Error) => this.logger.error(`responses: purge failed: ${err.message}`)),
      HOUR_MS,
    );
  },

  stopped(this: This) {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
  },
};

export default ResponsesService;
