/**
 * Model aliases and fallback chains (lib/models/aliases.ts): stored in the
 * `aliases` collection (one document per alias, `kind: "alias"`, and per
 * model with fallbacks, `kind: "fallbacks"`), kept in memory as a RouteTable
 * that the api of this process reads on the hot path (`routerCore().routes`).
 * Changes are checked against the node table (the registry in this process)
 * and the configured clouds, made one at a time, and announced: routers as
 * peers on a shared database read them again before a change is answered
 * (and every minute besides), and `aliases.changed` is broadcast for any
 * other process that keeps a copy.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { confirmOnPeers } from "../lib/cluster/confirm-peers";
import { cloudConfig, storageConfig, type CloudConfig } from "../lib/config";
import { routerCore } from "../lib/core/router-core";
import {
  checkAlias,
  checkAliasRemoval,
  checkFallbacks,
  RouteTable,
  type AliasDoc,
  type FallbackDoc,
  type ModelCheck,
} from "../lib/models/aliases";
import { apiError } from "../lib/openai/errors";
import { cloudModel, providerConfig } from "../lib/providers";
import { dbMixin, idOf } from "../mixins/db.mixin";

interface StoredDoc {
  _id?: unknown;
  kind: "alias" | "fallbacks";
  /** Set on aliases. */
  alias?: string;
  model: string;
  fallbacks: string[];
  createdAt: string;
}

export interface AliasView {
  alias: string;
  model: string;
  fallbacks: string[];
  created_at: string;
}

export interface AliasList {
  aliases: AliasView[];
  fallbacks: FallbackDoc[];
}

interface Vars {
  table: RouteTable;
  clouds: Record<string, CloudConfig>;
  /** A database other routers may share (PostgreSQL, MongoDB): read again every minute. */
  shared: boolean;
  reloadTimer: NodeJS.Timeout | null;
  /** The change being made: the next waits for it. */
  pending: Promise<unknown>;
  adapter: {
    find(q: { query: object }): Promise<StoredDoc[]>;
    insert(doc: StoredDoc): Promise<StoredDoc>;
    updateById(id: string, update: object): Promise<StoredDoc>;
    removeById(id: string): Promise<unknown>;
  };
}

interface Methods {
  modelCheck(): ModelCheck;
  reload(): Promise<void>;
  inTurn<T>(work: () => Promise<T>): Promise<T>;
  announce(): Promise<void>;
  findOne(query: object): Promise<StoredDoc | undefined>;
  listView(): AliasList;
}

type This = Service & Vars & Methods;

/** Shared database: how often the aliases are read again (a peer's change this router was not told of). */
const RELOAD_MS = 60_000;

const view = (a: AliasDoc): AliasView => ({
  alias: a.alias,
  model: a.model,
  fallbacks: a.fallbacks,
  created_at: a.createdAt,
});

const names = { type: "array", items: { type: "string", min: 1, max: 1024 } };

const AliasesService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "aliases",
  mixins: [dbMixin("aliases")],

  actions: {
    /** Every alias and every model's fallbacks, sorted by name, as the store has them now. */
    list: {
      visibility: "public",
      handler(this: This): Promise<AliasList> {
        return this.inTurn(async () => this.listView());
      },
    },

    /** Creates or replaces an alias; `replaced` says which. */
    set: {
      visibility: "public",
      params: {
        alias: "string",
        model: { type: "string", min: 1, max: 1024 },
        fallbacks: { ...names, optional: true },
      },
      handler(this: This, ctx: Context<{ alias: string; model: string; fallbacks?: string[] }>) {
        const { alias, model, fallbacks = [] } = ctx.params;
        return this.inTurn(async () => {
          checkAlias(this.table, { alias, model, fallbacks }, this.modelCheck());
          const old = await this.findOne({ kind: "alias", alias });
          const doc: StoredDoc = old
            ? { ...old, model, fallbacks }
            : await this.adapter.insert({
                kind: "alias",
                alias,
                model,
                fallbacks,
                createdAt: new Date().toISOString(),
              });
          if (old) await this.adapter.updateById(idOf(old), { $set: { model, fallbacks } });
          await this.reload();
          await this.announce();
          return { ...view({ alias, model, fallbacks, createdAt: doc.createdAt }), replaced: !!old };
        });
      },
    },

    /** Removes an alias: 404 when there is none, 409 while other settings name it. */
    remove: {
      visibility: "public",
      params: { alias: "string" },
      handler(this: This, ctx: Context<{ alias: string }>) {
        const { alias } = ctx.params;
        return this.inTurn(async () => {
          checkAliasRemoval(this.table, alias);
          const old = await this.findOne({ kind: "alias", alias });
          if (old) await this.adapter.removeById(idOf(old));
          await this.reload();
          await this.announce();
          return { deleted: true, alias };
        });
      },
    },

    /** Sets a real model's fallbacks; an empty list removes them. */
    setFallbacks: {
      visibility: "public",
      params: { model: { type: "string", min: 1, max: 1024 }, fallbacks: names },
      handler(this: This, ctx: Context<{ model: string; fallbacks: string[] }>) {
        const { model, fallbacks } = ctx.params;
        return this.inTurn(async () => {
          const old = await this.findOne({ kind: "fallbacks", model });
          if (fallbacks.length === 0) {
            if (old) await this.adapter.removeById(idOf(old));
          } else {
            checkFallbacks(this.table, { model, fallbacks }, this.modelCheck());
            if (old) await this.adapter.updateById(idOf(old), { $set: { fallbacks } });
            else
              await this.adapter.insert({ kind: "fallbacks", model, fallbacks, createdAt: new Date().toISOString() });
          }
          await this.reload();
          await this.announce();
          return { model, fallbacks };
        });
      },
    },

    /** Removes a model's fallbacks: 404 when it has none. */
    removeFallbacks: {
      visibility: "public",
      params: { model: "string" },
      handler(this: This, ctx: Context<{ model: string }>) {
        const { model } = ctx.params;
        return this.inTurn(async () => {
          const old = await this.findOne({ kind: "fallbacks", model });
          if (!old) {
            throw apiError(404, `No fallbacks are set for '${model}'.`, "fallbacks_not_found", { param: "model" });
          }
          await this.adapter.removeById(idOf(old));
          await this.reload();
          await this.announce();
          return { deleted: true, model };
        });
      },
    },

    /** A peer on the shared database changed the aliases: read them again before it answers. */
    reload: {
      visibility: "public",
      handler(this: This) {
        return this.inTurn(async () => ({ ok: true }));
      },
    },
  },

  methods: {
    /** What a change is checked against: the node table of this process's registry, and the configured clouds. */
    modelCheck(this: This): ModelCheck {
      const table = routerCore(this.broker).table;
      return {
        isRealModel: (name) => table.knows(name),
        isCloudModel: (name) => {
          const c = cloudModel(name);
          return c !== null && providerConfig(c.provider, this.clouds) !== null;
        },
      };
    },

    /** Reads every document again into a new table, which the api of this process then reads. */
    async reload(this: This) {
      const docs = await this.adapter.find({ query: {} });
      const aliases: AliasDoc[] = [];
      const fallbacks: FallbackDoc[] = [];
      for (const d of docs) {
        if (d.kind === "alias" && d.alias) {
          aliases.push({ alias: d.alias, model: d.model, fallbacks: d.fallbacks ?? [], createdAt: d.createdAt });
        } else if (d.kind === "fallbacks") {
          fallbacks.push({ model: d.model, fallbacks: d.fallbacks ?? [] });
        }
      }
      this.table = new RouteTable(aliases, fallbacks);
      routerCore(this.broker).routes = this.table;
    },

    /**
     * Runs changes (and readings) one at a time, each on the aliases as the
     * store has them now: a reading never puts back a table older than a change.
     */
    inTurn<T>(this: This, work: () => Promise<T>): Promise<T> {
      const run = this.pending.then(async () => {
        await this.reload();
        return work();
      });
      this.pending = run.catch(() => undefined);
      return run;
    },

    async announce(this: This) {
      await confirmOnPeers(this.broker, "aliases.reload", this.logger, "the alias change");
      this.broker.broadcast("aliases.changed", {});
    },

    async findOne(this: This, query: object) {
      return (await this.adapter.find({ query }))[0];
    },

    listView(this: This): AliasList {
      const { aliases, fallbacks } = this.table.list();
      return {
        aliases: aliases.map(view),
        fallbacks: fallbacks.map((f) => ({ model: f.model, fallbacks: f.fallbacks })),
      };
    },
  },

  created(this: This) {
    this.table = new RouteTable();
    this.clouds = cloudConfig();
    const storage = storageConfig();
    this.shared = !!(storage.databaseUrl || storage.mongoUri);
    this.reloadTimer = null;
    this.pending = Promise.resolve();
  },

  async started(this: This) {
    await this.reload();
    if (this.shared) {
      this.reloadTimer = setInterval(
        () =>
          void this.inTurn(async () => undefined).catch((err: Error) =>
            this.logger.warn(`aliases not read again: ${err.message}`),
          ),
        RELOAD_MS,
      );
    }
  },

  stopped(this: This) {
    if (this.reloadTimer) clearInterval(this.reloadTimer);
    const core = routerCore(this.broker);
    if (core.routes === this.table) core.routes = null;
  },
};

export default AliasesService;
