/**
 * API keys for `/v1`: shown once at creation, stored only as a SHA-256 hash.
 * Each has an owner, optional expiry, allowed models, scopes
 * (lib/auth/scopes.ts), a priority and limits (lib/quota/limits.ts); each
 * user may have limits too, which hold for all their keys together. The
 * service admits each request against them (lib/quota/quota.ts: counted in
 * this process's memory, or on PostgreSQL for routers as peers) and takes
 * the tokens the api reports. `verify` answers from an in-memory index, so
 * the hot path never waits for the store. Routers as peers on a shared
 * database tell each other of every change (`announce`); a key this router
 * does not know is looked up in the database (a key made on a peer it had
 * not met yet), and the index is read again every minute besides.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { displayKey, generateApiKey, hashApiKey, looksLikeApiKey, type KeyIdentity } from "../lib/auth/keys";
import { scopeAllows, parseScopes } from "../lib/auth/scopes";
import { apiError } from "../lib/openai/errors";
import { dbMixin, idOf } from "../mixins/db.mixin";
import { KeyQuotaMixin, type KeyQuotaMethods, type KeyQuotaVars } from "../mixins/key-quota.mixin";
import { storageConfig } from "../lib/config";
import { routerCore, type KeyRoute } from "../lib/core/router-core";
import { confirmOnPeers } from "../lib/cluster/confirm-peers";
import { parsePriority, priorityValue, type Priority } from "../lib/routing/priority";
import { hasLimits, limitsOf, limitsView, parseLimits, type Limits } from "../lib/quota/limits";
import type { Subject } from "../lib/quota/decide";

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
  /** Limits besides requests per minute (`rateLimitRpm`); absent: none. */
  limits?: Partial<Limits> | null;
  /** What the key may be used for (lib/auth/scopes.ts); absent: inference. */
  scopes?: string[] | null;
}

export type { KeyIdentity };

interface Vars extends KeyQuotaVars {
  byHash: Map<string, KeyDoc>;
  lastTouched: Map<string, number>;
  databaseUrl: string | undefined;
  /** Shared database: hashes looked up and not found there, and when (an unknown key is not looked up again at once). */
  misses: Map<string, number>;
  reindexTimer: NodeJS.Timeout | null;
  adapter: {
    find(q: { query: object }): Promise<KeyDoc[]>;
    findById(id: string): Promise<KeyDoc | null>;
    insert(doc: KeyDoc): Promise<KeyDoc>;
    updateById(id: string, update: object): Promise<KeyDoc | null>;
    removeById(id: string): Promise<unknown>;
  };
}

interface Methods extends Omit<KeyQuotaMethods, "announce" | "reindex"> {
  view(k: KeyDoc): Record<string, unknown>;
  byId(id: string): Promise<KeyDoc>;
  reindex(): Promise<void>;
  announce(change?: { key: string; priority: number }): Promise<void>;
  verifyKey(key: string, hit: boolean, route?: KeyRoute): KeyIdentity | Promise<KeyIdentity>;
  lookUp(key: string, hit: boolean, route?: KeyRoute): Promise<KeyIdentity>;
  identity(doc: KeyDoc, now: number): KeyIdentity;
  subjectsOf(doc: KeyDoc): Subject[];
}

type This = Service & Vars & Methods;

const TOUCH_EVERY_MS = 60_000;
/** Shared database: how long a key not found there is refused without asking again, and how many such are kept. */
const MISS_TTL_MS = 5_000;
const MAX_MISSES = 10_000;
/** Shared database: how often the index is read again (a peer's change this router was not told of). */
const REINDEX_MS = 60_000;

const invalidKey = () => apiError(401, "The API key is not valid.", "invalid_api_key");

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
  // checked by parseLimits, parsePriority and parseScopes, which name what they take
  rate_limit_rpm: { type: "any", optional: true },
  rate_limit_tpm: { type: "any", optional: true },
  daily_token_budget: { type: "any", optional: true },
  monthly_token_budget: { type: "any", optional: true },
  max_concurrent_requests: { type: "any", optional: true },
  priority: { type: "any", optional: true },
  scopes: { type: "any", optional: true },
};

/** An expiry the client sends must lie ahead (a key that expired in 1969 is a mistake, not a key). */
function expiryIso(d: Date | null | undefined): string | null {
  if (!d) return null;
  if (d.getTime() <= Date.now()) {
    throw apiError(400, "expires_at must be in the future.", "invalid_value", { param: "expires_at" });
  }
  return d.toISOString();
}

type KeyParams = Record<string, unknown> & {
  name?: string;
  expires_at?: Date | null;
  allowed_models?: string[] | null;
};

/** Each key's limits, made once per document (a change is a document read again, never one changed in place). */
const limitsByDoc = new WeakMap<KeyDoc, Limits>();

/** A key's limits: requests per minute (kept as before) and the rest. */
function keyLimits(doc: KeyDoc): Limits {
  let limits = limitsByDoc.get(doc);
  if (!limits) {
    limits = limitsOf({ ...doc.limits, rpm: doc.rateLimitRpm });
    limitsByDoc.set(doc, limits);
  }
  return limits;
}

/** The limit fields of a request applied to a key's stored ones. */
function withLimits(doc: Pick<KeyDoc, "rateLimitRpm" | "limits">, params: Record<string, unknown>) {
  const { rpm, ...rest } = parseLimits(params);
  return {
    rateLimitRpm: rpm === undefined ? doc.rateLimitRpm : rpm,
    limits: { ...doc.limits, ...rest },
  };
}

const ApiKeysService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "apikeys",
  // the limits' side (users' limits, counting, budgets kept) is in the mixin
  mixins: [dbMixin("api_keys"), KeyQuotaMixin],

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
        const p = ctx.params;
        const expiresAt = expiryIso(p.expires_at);
        const limits = withLimits({ rateLimitRpm: null, limits: null }, p);
        const scopes = p.scopes === undefined ? null : parseScopes(p.scopes);
        const priority = p.priority === undefined ? null : parsePriority(p.priority);
        const key = generateApiKey();
        const doc = await this.adapter.insert({
          name: p.name,
          owner: p.owner,
          hash: hashApiKey(key),
          display: displayKey(key),
          createdAt: new Date().toISOString(),
          lastUsedAt: null,
          expiresAt,
          allowedModels: p.allowed_models ?? null,
          ...limits,
          priority,
          scopes,
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
        const p = ctx.params;
        const doc = await this.byId(p.id);
        const expiresAt = p.expires_at === undefined ? undefined : expiryIso(p.expires_at);
        const set: Partial<KeyDoc> = withLimits(doc, p);
        if (p.name !== undefined) set.name = p.name;
        if (expiresAt !== undefined) set.expiresAt = expiresAt;
        if (p.allowed_models !== undefined) set.allowedModels = p.allowed_models;
        if (p.priority !== undefined) set.priority = parsePriority(p.priority);
        if (p.scopes !== undefined) set.scopes = parseScopes(p.scopes);
        await this.adapter.updateById(p.id, { $set: set });
        await this.reindex();
        // requests of the key waiting in the queue take its new priority
        await this.announce(
          set.priority !== undefined ? { key: `key:${p.id}`, priority: priorityValue(set.priority) } : undefined,
        );
        return this.view(await this.byId(p.id));
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

    /** The identity of a key, or a 401 when it is unknown or expired; `hit` admits a request (429 over a limit). */
    verify: {
      visibility: "public",
      params: {
        key: { type: "string", max: 256 },
        hit: { type: "boolean", optional: true },
        route: { type: "object", optional: true },
      },
      handler(this: This, ctx: Context<{ key: string; hit?: boolean; route?: KeyRoute }>) {
        return this.verifyKey(ctx.params.key, !!ctx.params.hit, ctx.params.route);
      },
    },
  },

  methods: {
    /**
     * The identity of a key, or a 401 when it is unknown or expired (403 when
     * its scopes do not take `route`); `hit` admits a request against the
     * key's and its user's limits (429 past one), its grant in the identity.
     * The api of this process calls it directly (no action call on the hot path).
     */
    verifyKey(this: This, key: string, hit: boolean, route?: KeyRoute): KeyIdentity | Promise<KeyIdentity> {
      const doc = looksLikeApiKey(key) ? this.byHash.get(hashApiKey(key)) : undefined;
      if (!doc) {
        if (this.databaseUrl && looksLikeApiKey(key)) return this.lookUp(key, hit, route);
        throw invalidKey();
      }
      const now = Date.now();
      if (doc.expiresAt && Date.parse(doc.expiresAt) <= now) {
        throw apiError(401, "The API key has expired.", "expired_api_key");
      }
      if (route && !scopeAllows(doc.scopes, route.method, route.path, route.access)) {
        throw apiError(403, `This API key may not be used for ${route.method} ${route.path}.`, "scope_not_allowed");
      }
      const identity = this.identity(doc, now);
      const subjects = this.subjectsOf(doc);
      if (!hit || !subjects.length) return identity;
      return this.quota.admit(subjects).then((grant) => ({ ...identity, grant }));
    },

    /** A key the index does not hold, looked up in the shared database (a peer made it a moment ago). */
    async lookUp(this: This, key: string, hit: boolean, route?: KeyRoute): Promise<KeyIdentity> {
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
      return this.verifyKey(key, hit, route);
    },

    /** Whom a request with this key counts for: the key and its user, each when it has limits. */
    subjectsOf(this: This, doc: KeyDoc): Subject[] {
      const out: Subject[] = [];
      const own = keyLimits(doc);
      if (hasLimits(own)) out.push({ id: `key:${idOf(doc)}`, kind: "key", limits: own });
      const user = this.userLimits.get(doc.owner);
      if (user) out.push({ id: `user:${doc.owner}`, kind: "user", limits: user });
      return out;
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
        limited: hasLimits(keyLimits(doc)) || this.userLimits.has(doc.owner),
        scopes: doc.scopes ?? null,
        priority: priorityValue(doc.priority),
        expiresAt: doc.expiresAt,
      };
    },

    /**
     * A key changed: other key services (routers as peers on one database)
     * read the keys again and the other api processes forget the keys they
     * keep (lib/auth/key-cache.ts), before the change is answered, so a new
     * key works and a revoked one stops everywhere at once. A new priority
     * reaches the requests of the key waiting in every router's queue.
     */
    async announce(this: This, change?: { key: string; priority: number }) {
      if (change) routerCore(this.broker).balancer?.reprioritize(change.key, change.priority);
      await confirmOnPeers(this.broker, "apikeys.reload", this.logger, "the key change");
      await confirmOnPeers(this.broker, "api.forgetKeys", this.logger, "the key change", change ? { change } : {});
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
        ...limitsView(keyLimits(k)),
        priority: k.priority ?? "normal",
        scopes: k.scopes ?? ["inference"],
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
      await this.readUserLimits();
      this.misses.clear();
    },
  },

  created(this: This) {
    // the api of this process checks keys here directly (mixins/auth-gate.mixin.ts)
    const core = routerCore(this.broker);
    core.keys = {
      verifyKey: (key, hit, route) => this.verifyKey(key, hit, route),
      useQuota: (grant, tokens, ended) => this.quota.use(grant, tokens, ended),
    };
    this.byHash = new Map();
    this.lastTouched = new Map();
    this.databaseUrl = storageConfig().databaseUrl;
    this.misses = new Map();
    this.reindexTimer = null;
  },

  async started(this: This) {
    await this.reindex();
    if (this.databaseUrl) {
      this.reindexTimer = setInterval(
        () => void this.reindex().catch((err: Error) => this.logger.warn(`API keys not read again: ${err.message}`)),
        REINDEX_MS,
      );
    }
  },

  stopped(this: This) {
    if (this.reindexTimer) clearInterval(this.reindexTimer);
  },
};

export default ApiKeysService;
