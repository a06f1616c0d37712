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
import { routerCore } from "../lib/core/router-core";
import { generateNodeToken, hashNodeToken, nodeTokenMatches } from "../lib/auth/node-tokens";
import { apiError } from "../lib/openai/errors";
import { applyAgentReport, type AgentReport } from "../lib/runtimes/agent-report";
import { externalHeartbeat } from "../lib/runtimes/external-heartbeat";
import { listModels, probeModels, type ExternalRuntime } from "../lib/runtimes/openai-upstream";
import { parseApiKey, parseBaseUrl, parseEndpoints, parseName } from "../lib/runtimes/runtime-url";

export type { ExternalRuntime };

interface ExternalDoc extends ExternalRuntime {
  _id?: unknown;
  kind: "external";
}

interface Vars {
  table: NodeTable;
  /** How often runtimes are checked; how long an agent's pushed report counts (LLM_ROUTER_HEALTH_CHECK_INTERVAL, LLM_ROUTER_NODE_TIMEOUT). */
  runtimeTimes: { healthCheckMs: number; reportTtlMs: number };
  externals: Map<string, ExternalRuntime>;
  checks: Map<string, NodeJS.Timeout>;
  /** Runtimes with a check in flight: one at a time, so an old answer never overwrites a newer one. */
  checking: Set<string>;
  /** The latest heartbeat each runtime's agent pushed, with when it came. */
  reports: Map<string, { report: AgentReport; at: number }>;
  adapter: {
    find(q: { query: object }): Promise<ExternalDoc[]>;
    insert(doc: ExternalDoc): Promise<unknown>;
    removeMany(query: object): Promise<unknown>;
  };
}

interface Methods {
  loadExternals(opts?: { waitForChecks?: boolean }): Promise<void>;
  checkExternal(id: string): Promise<boolean>;
  watchExternal(rt: ExternalRuntime): void;
  dropExternal(id: string): Promise<boolean>;
  forgetExternal(id: string): void;
  /** The registry's node view. */
  view(id: string): unknown;
  /** The registry's replica sync (mixins/registry-sync.mixin.ts). */
  publishSync(): Promise<void>;
}

type This = Service & Vars & Methods;

const CHECK_TIMEOUT_MS = 5000;
/** An agent's report counts for this long (it is expected once per health-check interval or so). */

const num = (max: number) => ({ type: "number", min: 0, max, optional: true, convert: true });

export function externalId(baseUrl: string): string {
  return `ext-${createHash("sha256").update(baseUrl).digest("hex").slice(0, 10)}`;
}

const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "registry",

  actions: {
    registerExternal: {
      visibility: "public",
      // checked in the handler (lib/runtimes/runtime-url.ts), each refusal a 400 naming its field
      params: {
        base_url: { type: "any", optional: true },
        api_key: { type: "any", optional: true },
        name: { type: "any", optional: true },
        parallel: { type: "number", integer: true, positive: true, max: 1024, optional: true },
        endpoints: { type: "any", optional: true },
      },
      async handler(
        this: This,
        ctx: Context<{ base_url: unknown; api_key?: unknown; name?: unknown; parallel?: number; endpoints?: unknown }>,
      ) {
        const baseUrl = parseBaseUrl(ctx.params.base_url, "base_url");
        const apiKey = parseApiKey(ctx.params.api_key, "api_key");
        const name = parseName(ctx.params.name, "name");
        const endpoints = parseEndpoints(ctx.params.endpoints, "endpoints");
        const id = externalId(baseUrl);
        if (this.externals.has(id)) throw apiError(409, `${baseUrl} is registered already as ${id}.`, "node_exists");
        const token = generateNodeToken();
        const rt: ExternalRuntime = {
          id,
          baseUrl,
          apiKey,
          name: name ?? new URL(baseUrl).host,
          parallel: ctx.params.parallel ?? 4,
          tokenHash: hashNodeToken(token),
          ...(endpoints ? { endpoints } : {}),
        };
        // it must answer now, so a typo fails here (naming the URL it tried) and not at the first request
        await probeModels(rt, CHECK_TIMEOUT_MS);
        // the same URL registered meanwhile by another request
        if (this.externals.has(id)) throw apiError(409, `${baseUrl} is registered already as ${id}.`, "node_exists");
        await this.adapter.insert({ kind: "external", ...rt });
        this.externals.set(id, rt);
        await this.checkExternal(id);
        this.watchExternal(rt);
        this.logger.info(`Registered the external runtime ${id} at ${baseUrl}`);
        await this.publishSync();
        // the node token is shown once: its agent sends it with POST /api/health
        return { ...(this.view(id) as object), node_token: token };
      },
    },

    /** POST /api/health: a heartbeat pushed by an external runtime's agent, with its node token. */
    agentHealth: {
      visibility: "public",
      params: {
        token: { type: "string", max: 4096 },
        agent_id: { type: "string", min: 1, max: 128 },
        cpu_usage: num(100),
        memory_usage: num(100),
        active_requests: { ...num(1e6), integer: true },
        gpu_usage: num(100),
        gpu_memory_used_bytes: num(1e15),
        gpu_memory_total_bytes: num(1e15),
        gpu_model: { type: "string", max: 256, optional: true },
      },
      handler(this: This, ctx: Context<AgentReport & { token: string; agent_id: string }>) {
        const { token, agent_id: id, ...report } = ctx.params;
        const rt = this.externals.get(id);
        // one answer for an unknown runtime and a wrong token
        if (!rt || !nodeTokenMatches(token, rt.tokenHash)) {
          throw apiError(401, "The node token does not match this agent_id.", "invalid_node_token");
        }
        const at = Date.now();
        this.reports.set(id, { report, at });
        const current = this.table.get(id);
        if (current && current.status === "online") {
          this.table.upsert(applyAgentReport({ ...current, sentAt: at }, report, at), at);
          this.broker.broadcastLocal("registry.changed", { nodeID: id });
        }
        return { agent_id: id, status: current?.status ?? "offline", received_at: new Date(at).toISOString() };
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
        let hb = externalHeartbeat(id, rt.name, rt.baseUrl, models, rt.parallel);
        const pushed = this.reports.get(id);
        if (pushed && Date.now() - pushed.at < this.runtimeTimes.reportTtlMs) hb = applyAgentReport(hb, pushed.report);
        const changed = this.table.upsert(hb);
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
        setInterval(() => void this.checkExternal(rt.id), this.runtimeTimes.healthCheckMs),
      );
    },

    /**
     * Loads the registered runtimes and starts their health checks (the
     * registry calls it once its store is open, and again when a peer on the
     * shared database registered one: those it has already are kept).
     * `waitForChecks`: resolves once the new ones were checked (then they are
     * in the node table).
     */
    async loadExternals(this: This, opts: { waitForChecks?: boolean } = {}) {
      const checks: Array<Promise<boolean>> = [];
      for (const doc of await this.adapter.find({ query: { kind: "external" } })) {
        if (this.externals.has(doc.id)) continue;
        const rt: ExternalRuntime = {
          id: doc.id,
          baseUrl: doc.baseUrl,
          apiKey: doc.apiKey,
          name: doc.name,
          parallel: doc.parallel,
          tokenHash: doc.tokenHash,
          ...(doc.endpoints ? { endpoints: doc.endpoints } : {}),
        };
        this.externals.set(rt.id, rt);
        checks.push(this.checkExternal(rt.id));
        this.watchExternal(rt);
      }
      if (opts.waitForChecks) await Promise.all(checks);
    },

    /** Removes an external runtime, here and from the store; false when `id` is not one. */
    async dropExternal(this: This, id: string): Promise<boolean> {
      if (!this.externals.has(id)) return false;
      this.forgetExternal(id);
      await this.adapter.removeMany({ kind: "external", id });
      return true;
    },

    /** Stops checking an external runtime and forgets it here (a peer removed it from the shared store). */
    forgetExternal(this: This, id: string) {
      clearInterval(this.checks.get(id));
      this.checks.delete(id);
      this.externals.delete(id);
      this.reports.delete(id);
    },
  },

  created(this: This) {
    const cfg = routerConfig();
    this.runtimeTimes = { healthCheckMs: cfg.healthCheckSecs * 1000, reportTtlMs: cfg.nodeTimeoutSecs * 1000 };
    // the core's map: the balancer reaches a runtime by its node ID there
    this.externals = routerCore(this.broker).externals;
    this.checks = new Map();
    this.checking = new Set();
    this.reports = new Map();
  },

  stopped(this: This) {
    for (const t of this.checks.values()) clearInterval(t);
  },
};

// Moleculer types a mixin list as schemas with no vars of their own; this one
// relies on the registry's `table`, `adapter` and `view`, typed above.
export const ExternalRuntimesMixin = schema as unknown as Partial<ServiceSchema>;
