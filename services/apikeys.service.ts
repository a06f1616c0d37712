/**
 * API keys for `/v1`: shown once at creation, stored only as a SHA-256 hash.
 * Each has an owner, optional expiry, allowed models and requests-per-minute
 * limit. `verify` answers from an in-memory index, so the hot path never
 * waits for the store. Routers as peers on a shared database tell each other
 * of every change (`announce`); a key this router does not know is looked
 * up in the database (a key made on a peer it had not met yet), and the
 * index is read again every minute besides.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { displayKey, generateApiKey, hashApiKey, looksLikeApiKey, type KeyIdentity } from "../lib/auth/keys";
import { WindowCounter } from "../lib/auth/throttle";
import { apiError } from "../lib/openai/errors";
import { dbMixin, idOf } from "../mixins/db.mixin";
import { storageConfig } from "../lib/config";
import { openDatabase, releaseDatabase } from "../lib/db/postgres";
import { SharedCounter } from "../lib/db/shared-state";
import { routerCore } from "../lib/core/router-core";
import { confirmOnPeers } from "../lib/cluster/confirm-peers";
import { parsePriority, priorityValue, type Priority } from "../lib/routing/priority";

interface KeyDoc {
  _id?: unknown;
  name: string;
  owner: string;
  hash: string;
  display: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  allowedModels: string[] | null;
  rateLimitRpm: number | null;
  /** A name or 0–1000 (lib/routing/priority.ts); absent on keys made before it existed: normal. */
  priority?: Priority | null;
}

export type { KeyIdentity };

interface Vars {
  byHash: Map<string, KeyDoc>;
  lastTouched: Map<string, number>;
  /** Requests per key in the current minute. */
  rpm: WindowCounter;
  /** With a shared database: the requests per minute every router counts together, and its URL. */
  sharedRpm: SharedCounter | null;
  databaseUrl: string | undefined;
  /** Shared database: hashes looked up and not found there, and when (an unknown key is not looked up again at once). */
  misses: Map<string, number>;
  reindexTimer: NodeJS.Timeout | null;
  adapter: {
    find(q: { query: object }): Promise<KeyDoc[]>;
    findById(id: string): Promise<KeyDoc | null>;
    insert(doc: KeyDoc): Promise<KeyDoc>;
    updateById(id: string, update: object): Promise<KeyDoc>;
    removeById(id: string): Promise<unknown>;
  };
}

interface Methods {
  view(k: KeyDoc): Record<string, unknown>;
  byId(id: string): Promise<KeyDoc>;
  reindex(): Promise<void>;
  announce(): Promise<void>;
  verifyKey(key: string, hit: boolean): KeyIdentity | Promise<KeyIdentity>;
  lookUp(key: string, hit: boolean): Promise<KeyIdentity>;
  identity(doc: KeyDoc, now: number): KeyIdentity;
}

type This = Service & Vars & Methods;

const TOUCH_EVERY_MS = 60_000;
/** Shared database: how long a key not found there is refused without asking again, and how many such are kept. */
const MISS_TTL_MS = 5_000;
const MAX_MISSES = 10_000;
/** Shared database: how often the index is read again (a peer's change this router was not told of). */
const REINDEX_MS = 60_000;

const invalidKey = () => apiError(401, "The API key is not valid.", "invalid_api_key");

const overLimit = (limit: number, retryAfter: number) =>
  apiError(429, `This key is limited to ${limit} requests per minute.`, "rate_limit_exceeded", { retryAfter });

const fields = {
  name: { type: "string", min: 1, max: 128, optional: true },
  expires_at: { type: "date", convert: true, optional: true, nullable: true },
  allowed_models: {
    type: "array",
    items: { type: "string", min: 1, max: 256 },
    max: 1000,
    optional: true,
    nullable: true,
  },
  rate_limit_rpm: { type: "number", integer: true, positive: true, optional: true, nullable: true },
  // checked by parsePriority, which names what it takes
  priority: { type: "any", optional: true },
};

/** An expiry the client sends must lie ahead (a key that expired in 1969 is a mistake, not a key). */
function expiryIso(d: Date | null | undefined): string | null {
  if (!d) return null;
  if (d.getTime() <= Date.now()) {
    throw apiError(400, "expires_at must be in the future.", "invalid_value", { param: "expires_at" });
  }
  return d.toISOString();
}

interface KeyParams {
  name?: string;
  expires_at?: Date | null;
  allowed_models?: string[] | null;
  rate_limit_rpm?: number | null;
  priority?: unknown;
}

const ApiKeysService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "apikeys",
  mixins: [dbMixin("api_keys")],

  actions: {
    list: {
      visibility: "public",
      params: { owner: { type: "string", optional: true } },
      async handler(this: This, ctx: Context<{ owner?: string }>) {
        const docs = await this.adapter.find({ query: ctx.params.owner ? { owner: ctx.params.owner } : {} });
        return docs.map((d) => this.view(d)).sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
      },
    },

    create: {
      visibility: "public",
      params: { ...fields, name: { type: "string", min: 1, max: 128 }, owner: "string" },
      async handler(this: This, ctx: Context<KeyParams & { name: string; owner: string }>) {
        const expiresAt = expiryIso(ctx.params.expires_at);
        const key = generateApiKey();
        const doc = await this.adapter.insert({
          name: ctx.params.name,
          owner: ctx.params.owner,
          hash: hashApiKey(key),
          display: displayKey(key),
          createdAt: new Date().toISOString(),
          lastUsedAt: null,
          expiresAt,
          allowedModels: ctx.params.allowed_models ?? null,
          rateLimitRpm: ctx.params.rate_limit_rpm ?? null,
          priority: ctx.params.priority === undefined ? null : parsePriority(ctx.params.priority),
        });
        this.byHash.set(doc.hash, doc);
        await this.announce();
        // the only time the key itself leaves this service
        return { ...this.view(doc), key };
      },
    },

    update: {
      visibility: "public",
      params: { id: "string", ...fields },
      async handler(this: This, ctx: Context<KeyParams & { id: string }>) {
        await this.byId(ctx.params.id);
        const expiresAt = ctx.params.expires_at === undefined ? undefined : expiryIso(ctx.params.expires_at);
        const set: Partial<KeyDoc> = {};
        if (ctx.params.name !== undefined) set.name = ctx.params.name;
        if (expiresAt !== undefined) set.expiresAt = expiresAt;
        if (ctx.params.allowed_models !== undefined) set.allowedModels = ctx.params.allowed_models;
        if (ctx.params.rate_limit_rpm !== undefined) set.rateLimitRpm = ctx.params.rate_limit_rpm;
        if (ctx.params.priority !== undefined) set.priority = parsePriority(ctx.params.priority);
        await this.adapter.updateById(ctx.params.id, { $set: set });
        await this.reindex();
        await this.announce();
        return this.view(await this.byId(ctx.params.id));
      },
    },

    /** Revokes a key: it is deleted, so it stops working at once. */
    remove: {
      visibility: "public",
      params: { id: "string" },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const doc = await this.byId(ctx.params.id);
        await this.adapter.removeById(ctx.params.id);
        this.byHash.delete(doc.hash);
        await this.announce();
        return { deleted: true, id: ctx.params.id };
      },
    },

    /** Another key service (a peer on the shared database) changed a key: read them again before it answers. */
    reload: {
      visibility: "public",
      async handler(this: This) {
        await this.reindex();
        return { ok: true };
      },
    },

    /** The identity of a key, or a 401 when it is unknown or expired. */
    verify: {
      visibility: "public",
      params: { key: { type: "string", max: 256 }, hit: { type: "boolean", optional: true } },
      handler(this: This, ctx: Context<{ key: string; hit?: boolean }>): KeyIdentity | Promise<KeyIdentity> {
        return this.verifyKey(ctx.params.key, !!ctx.params.hit);
      },
    },
  },

  methods: {
    /**
     * The identity of a key, or a 401 when it is unknown or expired; `hit`
     * counts a request against its RPM limit (429 past it). The api of this
     * process calls it directly (no action call on the hot path).
     */
    verifyKey(this: This, key: string, hit: boolean): KeyIdentity | Promise<KeyIdentity> {
      const doc = looksLikeApiKey(key) ? this.byHash.get(hashApiKey(key)) : undefined;
      if (!doc) {
        if (this.databaseUrl && looksLikeApiKey(key)) return this.lookUp(key, hit);
        throw invalidKey();
      }
      const now = Date.now();
      if (doc.expiresAt && Date.parse(doc.expiresAt) <= now) {
        throw apiError(401, "The API key has expired.", "expired_api_key");
      }
      const id = idOf(doc);
      const limit = doc.rateLimitRpm;
      // a request made with the key: counted here, so the limit holds across router replicas; routers sharing a
      // database count it there, together
      if (hit && limit !== null && this.sharedRpm) {
        const counted = this.sharedRpm.hit(id, now).catch((err: Error) => {
          // the database is down: the limit holds per router meanwhile, rather than failing every request
          this.logger.warn(`key ${id}: requests counted by this router only (${err.message})`);
          return { count: this.rpm.hit(id, now), retryAfterSecs: this.rpm.retryAfterSecs(id, now) };
        });
        return counted.then(({ count, retryAfterSecs }) => {
          if (count > limit) throw overLimit(limit, retryAfterSecs);
          return this.identity(doc, now);
        });
      }
      if (hit && limit !== null && this.rpm.hit(id, now) > limit)
        throw overLimit(limit, this.rpm.retryAfterSecs(id, now));
      return this.identity(doc, now);
    },

    /** A key the index does not hold, looked up in the shared database (a peer made it a moment ago). */
    async lookUp(this: This, key: string, hit: boolean): Promise<KeyIdentity> {
      const hash = hashApiKey(key);
      const now = Date.now();
      if (now - (this.misses.get(hash) ?? -Infinity) < MISS_TTL_MS) throw invalidKey();
      const [doc] = await this.adapter.find({ query: { hash } }).catch((err: Error) => {
        this.logger.warn(`an unknown API key could not be looked up: ${err.message}`);
        return [];
      });
      if (!doc) {
        this.misses.delete(hash);
        this.misses.set(hash, now);
        if (this.misses.size > MAX_MISSES) this.misses.delete(this.misses.keys().next().value!);
        throw invalidKey();
      }
      this.byHash.set(hash, doc);
      return this.verifyKey(key, hit);
    },

    /** What the api learns of a valid key (its last use noted now and then). */
    identity(this: This, doc: KeyDoc, now: number): KeyIdentity {
      const id = idOf(doc);
      if (now - (this.lastTouched.get(id) ?? 0) > TOUCH_EVERY_MS) {
        this.lastTouched.set(id, now);
        doc.lastUsedAt = new Date(now).toISOString();
        this.adapter.updateById(id, { $set: { lastUsedAt: doc.lastUsedAt } }).catch((err: Error) => {
          this.logger.warn(`could not record the last use of key ${id}: ${err.message}`);
        });
      }
      return {
        id,
        name: doc.name,
        owner: doc.owner,
        allowedModels: doc.allowedModels,
        rateLimitRpm: doc.rateLimitRpm,
        priority: priorityValue(doc.priority),
        expiresAt: doc.expiresAt,
      };
    },

    /**
     * A key changed: other key services (routers as peers on one database)
     * read the keys again and the other api processes forget the keys they
     * keep (lib/auth/key-cache.ts), before the change is answered, so a new
     * key works and a revoked one stops everywhere at once.
     */
    async announce(this: This) {
      // other key services (routers as peers on one database) read the keys again first, then api processes forget theirs
      await confirmOnPeers(this.broker, "apikeys.reload", this.logger, "the key change");
      await confirmOnPeers(this.broker, "api.forgetKeys", this.logger, "the key change");
    },

    view(k: KeyDoc) {
      return {
        id: idOf(k),
        name: k.name,
        owner: k.owner,
        key_preview: k.display,
        created_at: k.createdAt,
        last_used_at: k.lastUsedAt,
        expires_at: k.expiresAt,
        allowed_models: k.allowedModels,
        rate_limit_rpm: k.rateLimitRpm,
        priority: k.priority ?? "normal",
      };
    },

    async byId(this: This, id: string): Promise<KeyDoc> {
      const doc = await this.adapter.findById(id).catch(() => null);
      if (!doc) throw apiError(404, `No API key with id '${id}'.`, "api_key_not_found", { param: "id" });
      return doc;
    },

    async reindex(this: This) {
      const docs = await this.adapter.find({ query: {} });
      this.byHash = new Map(docs.map((d) => [d.hash, d]));
      this.misses.clear();
    },
  },

  created(this: This) {
    // the api of this process checks keys here directly (mixins/auth-gate.mixin.ts)
    routerCore(this.broker).keys = { verifyKey: (key, hit) => this.verifyKey(key, hit) };
    this.byHash = new Map();
    this.lastTouched = new Map();
    this.rpm = new WindowCounter(60_000);
    this.sharedRpm = null;
    this.databaseUrl = storageConfig().databaseUrl;
    this.misses = new Map();
    this.reindexTimer = null;
  },

  async started(this: This) {
    if (this.databaseUrl) this.sharedRpm = new SharedCounter(await openDatabase(this.databaseUrl), "rpm", 60_000);
    await this.reindex();
    if (this.databaseUrl) {
      this.reindexTimer = setInterval(
        () => void this.reindex().catch((err: Error) => this.logger.warn(`API keys not read again: ${err.message}`)),
        REINDEX_MS,
      );
    }
  },

  async stopped(this: This) {
    if (this.reindexTimer) clearInterval(this.reindexTimer);
    if (this.databaseUrl && this.sharedRpm) await releaseDatabase(this.databaseUrl);
  },
};

export default ApiKeysService;
