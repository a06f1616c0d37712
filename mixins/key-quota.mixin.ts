/**
 * The key service's limits, split out of it: users' limits (for all their
 * keys together) and where requests are counted against them
 * (lib/quota/quota.ts): on PostgreSQL for routers as peers, else in this
 * process's memory, the day's and month's token counts kept in the store
 * every few seconds so a restart does not renew a budget. The api reports
 * admitted requests' tokens through `quotaUse` (another process's) or
 * straight to the quota (its own, lib/core/router-core.ts).
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { DbAdapter } from "moleculer-db";
import { storageConfig } from "../lib/config";
import { openDatabase, releaseDatabase } from "../lib/db/postgres";
import { hasLimits, limitsOf, limitsView, parseLimits, type Limits } from "../lib/quota/limits";
import { PgQuotaStore } from "../lib/quota/pg-store";
import { Quota, type Grant } from "../lib/quota/quota";
import { MemoryQuotaStore, type BudgetCount } from "../lib/quota/store";
import { idOf, openCollection } from "./db.mixin";

/** A user's limits, for all their keys together. */
interface UserLimitsDoc {
  _id?: unknown;
  user: string;
  limits: Partial<Limits>;
}

interface Store<D> {
  find(q: { query: object }): Promise<D[]>;
  insert(doc: D): Promise<D>;
  updateById(id: string, update: object): Promise<D | null>;
  removeById(id: string): Promise<unknown>;
}

export interface KeyQuotaVars {
  quota: Quota;
  userLimits: Map<string, Limits>;
  /** One router: budgets counted in memory and kept in `budgetStore` every few seconds. */
  memoryQuota: MemoryQuotaStore | null;
  budgetStore: Store<BudgetCount & { _id: string }> | null;
  userLimitStore: Store<UserLimitsDoc> | null;
  quotaDatabase: string | undefined;
  budgetTimer: NodeJS.Timeout | null;
}

export interface KeyQuotaMethods {
  /** Reads users' limits again (the key service's reindex). */
  readUserLimits(): Promise<void>;
  keepBudgets(): Promise<void>;
  /** The key service tells its peers and gateways of a change. */
  announce(): Promise<void>;
  reindex(): Promise<void>;
}

type This = Service & KeyQuotaVars & KeyQuotaMethods;

/** One router: how often the day's and month's token counts are written to its store. */
const KEEP_BUDGETS_MS = 5_000;

const LIMIT_PARAMS = {
  rate_limit_rpm: { type: "any", optional: true },
  rate_limit_tpm: { type: "any", optional: true },
  daily_token_budget: { type: "any", optional: true },
  monthly_token_budget: { type: "any", optional: true },
  max_concurrent_requests: { type: "any", optional: true },
};

const schema: ServiceSchema<ServiceSettingSchema, KeyQuotaMethods, KeyQuotaVars> = {
  name: "apikeys",

  actions: {
    /** Users' limits, by user id (users without limits are not listed). */
    userLimits: {
      visibility: "public",
      handler(this: This) {
        return Object.fromEntries([...this.userLimits].map(([user, l]) => [user, limitsView(l)]));
      },
    },

    /** Sets a user's limits (the fields given; null clears one); all null: the user has none. */
    setUserLimits: {
      visibility: "public",
      params: { user: { type: "string", min: 1, max: 128 }, ...LIMIT_PARAMS },
      async handler(this: This, ctx: Context<Record<string, unknown> & { user: string }>) {
        const { user } = ctx.params;
        const limits = { ...this.userLimits.get(user), ...parseLimits(ctx.params) };
        const store = this.userLimitStore!;
        const [existing] = await store.find({ query: { user } });
        if (!hasLimits(limits)) {
          if (existing) await store.removeById(idOf(existing));
        } else if (existing) await store.updateById(idOf(existing), { $set: { limits } });
        else await store.insert({ user, limits });
        await this.reindex();
        await this.announce();
        return { user, ...limitsView(limits) };
      },
    },

    /** An api process reports the tokens an admitted request used, and its end. */
    quotaUse: {
      visibility: "public",
      params: { grant: "object", tokens: { type: "number", min: 0 }, ended: "boolean" },
      async handler(this: This, ctx: Context<{ grant: Grant; tokens: number; ended: boolean }>) {
        await this.quota.use(ctx.params.grant, ctx.params.tokens, ctx.params.ended);
        return true;
      },
    },
  },

  methods: {
    async readUserLimits(this: This) {
      const users = (await this.userLimitStore?.find({ query: {} })) ?? [];
      this.userLimits = new Map(users.filter((u) => hasLimits(u.limits)).map((u) => [u.user, limitsOf(u.limits)]));
    },

    async keepBudgets(this: This) {
      const store = this.budgetStore;
      if (!store || !this.memoryQuota) return;
      for (const c of this.memoryQuota.dirty()) {
        const _id = `${c.subject}|${c.period}`;
        const kept = await store.updateById(_id, { $set: { start: c.start, used: c.used } });
        if (!kept) await store.insert({ _id, ...c });
      }
    },
  },

  created(this: This) {
    this.userLimits = new Map();
    this.quotaDatabase = storageConfig().databaseUrl;
    this.memoryQuota = null;
    this.budgetStore = null;
    this.userLimitStore = null;
    this.budgetTimer = null;
  },

  async started(this: This) {
    this.userLimitStore = (await openCollection("user_limits", this)) as unknown as Store<UserLimitsDoc>;
    if (this.quotaDatabase) {
      this.quota = new Quota(new PgQuotaStore(await openDatabase(this.quotaDatabase)), this.logger);
      return;
    }
    this.memoryQuota = new MemoryQuotaStore();
    this.quota = new Quota(this.memoryQuota, this.logger);
    this.budgetStore = (await openCollection("quota_budgets", this)) as unknown as Store<BudgetCount & { _id: string }>;
    this.memoryQuota.restore(await this.budgetStore.find({ query: {} }), Date.now());
    this.budgetTimer = setInterval(
      () => void this.keepBudgets().catch((err: Error) => this.logger.warn(`token budgets not kept: ${err.message}`)),
      KEEP_BUDGETS_MS,
    );
  },

  async stopped(this: This) {
    if (this.budgetTimer) clearInterval(this.budgetTimer);
    await this.keepBudgets().catch((err: Error) => this.logger.warn(`token budgets not kept: ${err.message}`));
    for (const store of [this.budgetStore, this.userLimitStore]) {
      await (store as unknown as DbAdapter | null)?.disconnect();
    }
    if (this.quotaDatabase && this.quota) await releaseDatabase(this.quotaDatabase);
  },
};

export const KeyQuotaMixin = schema as unknown as Partial<ServiceSchema>;
