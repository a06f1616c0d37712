/**
 * The registry's external runtimes: any OpenAI-compatible server registered
 * by base URL (and optional API key), persisted with the node settings,
 * health-checked with `GET /models` every LLM_ROUTER_HEALTH_CHECK_INTERVAL
 * seconds, and listed in the node table like an inference node. The key is
 * kept to call the runtime and never shown.
 */
import { createHash } from "node:crypto";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { NodeTable } from "../lib/cluster/node-table";
import { routerConfig } from "../lib/config";
import { apiError, badRequest } from "../lib/openai/errors";
import { externalHeartbeat } from "../lib/runtimes/external-heartbeat";
import { listModels, type Runtime } from "../lib/runtimes/openai-upstream";

export interface ExternalRuntime extends Runtime {
  name: string;
  parallel: number;
}

interface ExternalDoc extends ExternalRuntime {
  _id?: unknown;
  kind: "external";
}

interface Vars {
  table: NodeTable;
  externals: Map<string, ExternalRuntime>;
  checks: Map<string, NodeJS.Timeout>;
  /** Runtimes with a check in flight: one at a time, so an old answer never overwrites a newer one. */
  checking: Set<string>;
  adapter: {
    find(q: { query: object }): Promise<ExternalDoc[]>;
    insert(doc: ExternalDoc): Promise<unknown>;
    removeMany(query: object): Promise<unknown>;
  };
}

interface Methods {
  loadExternals(): Promise<void>;
  checkExternal(id: string): Promise<boolean>;
  watchExternal(rt: ExternalRuntime): void;
  dropExternal(id: string): Promise<boolean>;
  /** The registry's node view. */
  view(id: string): unknown;
}

type This = Service & Vars & Methods;

const CHECK_TIMEOUT_MS = 5000;
const healthCheckMs = routerConfig().healthCheckSecs * 1000;

export function externalId(baseUrl: string): string {
  return `ext-${createHash("sha256").update(baseUrl).digest("hex").slice(0, 10)}`;
}

const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "registry",

  actions: {
    registerExternal: {
      visibility: "public",
      params: {
        base_url: { type: "url", max: 2048 },
        api_key: { type: "string", max: 4096, optional: true },
        name: { type: "string", min: 1, max: 128, optional: true },
        parallel: { type: "number", integer: true, positive: true, max: 1024, optional: true },
      },
      async handler(
        this: This,
        ctx: Context<{ base_url: string; api_key?: string; name?: string; parallel?: number }>,
      ) {
        const baseUrl = ctx.params.base_url.replace(/\/+$/, "");
        if (!/^https?:\/\//.test(baseUrl)) throw badRequest("base_url must be http(s).", "base_url", "invalid_value");
        const id = externalId(baseUrl);
        if (this.externals.has(id)) throw apiError(409, `${baseUrl} is registered already as ${id}.`, "node_exists");
        const rt: ExternalRuntime = {
          id,
          baseUrl,
          apiKey: ctx.params.api_key,
          name: ctx.params.name ?? new URL(baseUrl).host,
          parallel: ctx.params.parallel ?? 4,
        };
        // it must answer now, so a typo fails here and not at the first request
        await listModels(rt, CHECK_TIMEOUT_MS);
        await this.adapter.insert({ kind: "external", ...rt });
        this.externals.set(id, rt);
        await this.checkExternal(id);
        this.watchExternal(rt);
        this.logger.info(`Registered the external runtime ${id} at ${baseUrl}`);
        return this.view(id);
      },
    },
  },

  methods: {
    view(): unknown {
      throw new Error("provided by the registry service");
    },

    /** Health check: online with its models, or offline. */
    async checkExternal(this: This, id: string): Promise<boolean> {
      const rt = this.externals.get(id);
      if (!rt || this.checking.has(id)) return false;
      this.checking.add(id);
      try {
        const models = await listModels(rt, CHECK_TIMEOUT_MS);
        if (!this.externals.has(id)) return false;
        const changed = this.table.upsert(externalHeartbeat(id, rt.name, rt.baseUrl, models, rt.parallel));
        if (changed) this.logger.info(`External runtime ${id} is online: ${models.join(", ") || "no models"}`);
      } catch (err) {
        if (this.table.markOffline(id) || !this.table.get(id)) {
          this.logger.warn(`External runtime ${id} is offline: ${(err as Error).message}`);
        }
      } finally {
        this.checking.delete(id);
      }
      this.broker.broadcastLocal("registry.changed", { nodeID: id });
      return true;
    },

    watchExternal(this: This, rt: ExternalRuntime) {
      this.checks.set(
        rt.id,
        setInterval(() => void this.checkExternal(rt.id), healthCheckMs),
      );
    },

    /** Loads the registered runtimes and starts their health checks (the registry calls it once its store is open). */
    async loadExternals(this: This) {
      for (const doc of await this.adapter.find({ query: { kind: "external" } })) {
        const rt: ExternalRuntime = {
          id: doc.id,
          baseUrl: doc.baseUrl,
          apiKey: doc.apiKey,
          name: doc.name,
          parallel: doc.parallel,
        };
        this.externals.set(rt.id, rt);
        void this.checkExternal(rt.id);
        this.watchExternal(rt);
      }
    },

    /** Forgets an external runtime; false when `id` is not one. */
    async dropExternal(this: This, id: string): Promise<boolean> {
      if (!this.externals.has(id)) return false;
      clearInterval(this.checks.get(id));
      this.checks.delete(id);
      this.externals.delete(id);
      await this.adapter.removeMany({ kind: "external", id });
      return true;
    },
  },

  created(this: This) {
    this.externals = new Map();
    this.checks = new Map();
    this.checking = new Set();
  },

  stopped(this: This) {
    for (const t of this.checks.values()) clearInterval(t);
  },
};

// Moleculer types a mixin list as schemas with no vars of their own; this one
// relies on the registry's `table`, `adapter` and `view`, typed above.
export const ExternalRuntimesMixin = schema as unknown as Partial<ServiceSchema>;
