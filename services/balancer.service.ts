/**
 * Picks the inference node for a request with the strategy that
 * LLM_ROUTER_LOAD_BALANCER_MODE names. Runs beside the api and the registry
 * (it reads the registry's node table directly: choosing costs no hop). It
 * counts this router's in-flight requests per node, benches failing nodes,
 * smooths each node's time to first token, and keeps the wait queue for
 * requests that find every node with their model full or still loading.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { routerConfig, type RouterConfig } from "../lib/config";
import { NodeHealth } from "../lib/cluster/node-health";
import type { NodeTable } from "../lib/cluster/node-table";
import { apiError, modelNotFound } from "../lib/openai/errors";
import { WaitQueue } from "../lib/routing/wait-queue";
import { createStrategy, type Candidate, type RouteRequest, type Strategy } from "../lib/strategies";
import { busyRatio } from "../lib/strategies/types";
import { CandidatePools } from "../lib/routing/candidates";
import { explainRoute } from "../lib/routing/explain";
import type { Runtime } from "../lib/runtimes/openai-upstream";

interface Settings {
  router: RouterConfig;
}

export interface Selection {
  nodeID: string;
  machineName: string;
  /** Set when the node is an external runtime reached over HTTP. */
  runtime?: Runtime;
}

interface Pending {
  request: RouteRequest;
  exclude: string[];
  selection?: Selection;
  error?: unknown;
}

interface Vars {
  strategy: Strategy;
  health: NodeHealth;
  queue: WaitQueue<Pending>;
  inflight: Map<string, number>;
  /** This router's in-flight count for a node when its last heartbeat arrived. */
  inflightAtReport: Map<string, number>;
  lastSelected: Map<string, number>;
  latency: Map<string, number>;
  /** Each model's candidates, kept between decisions. */
  pools: CandidatePools;
  table(): NodeTable;
  runtimeOf(nodeID: string): Runtime | undefined;
}

interface Methods {
  selectNode(params: SelectParams): Promise<Selection>;
  requestFinished(params: Finished): void;
  eligible(model: string, exclude: string[]): Candidate[];
  pick(p: Pending): Selection | "wait";
  admit(p: Pending, ahead: number): boolean;
}

type This = Service<Settings> & Vars & Methods;

export type Outcome = "ok" | "node_failed" | "client_error" | "other";

export interface SelectParams {
  model: string;
  user?: string;
  affinityKey?: string;
  exclude?: string[];
}

export interface Finished {
  nodeID: string;
  outcome: Outcome;
  ttftMs?: number;
}

const BalancerService: ServiceSchema<Settings, Methods, Vars> = {
  name: "balancer",

  settings: {
    router: routerConfig(),
  },

  actions: {
    select: {
      visibility: "public",
      handler(this: This, ctx: Context<SelectParams>): Promise<Selection> {
        return this.selectNode(ctx.params);
      },
    },
    /** What `select` would do for `model` now and why (the ops console's `route`); reserves nothing. */
    explain: {
      visibility: "public",
      params: { model: "string" },
      handler(this: This, ctx: Context<{ model: string }>) {
        const { model } = ctx.params;
        const candidates = this.eligible(model, []);
        return explainRoute({
          router: this.broker.nodeID,
          model,
          strategy: this.strategy,
          candidates,
          nodes: this.table().list(),
          serving: this.table()
            .serving(model)
            .map((n) => n.id),
          draining: (id) => this.table().settingsOf(id).draining,
          benched: (id) => this.health.isBenched(id),
          queued: this.queue.count((p) => p.request.model === model),
        });
      },
    },
    stats: {
      visibility: "public",
      handler(this: This) {
        return {
          mode: this.strategy.name,
          inflight: Object.fromEntries(this.inflight),
          benched: this.health.benched(),
          queued: this.queue.length,
        };
      },
    },
  },

  events: {
    /** The api says a request it routed is over (local only: in-flight counts are per router). */
    "router.request.finished"(this: This, ctx: Context<Finished>) {
      this.requestFinished(ctx.params);
    },
    "registry.changed"(this: This, ctx: Context<{ nodeID: string | null }>) {
      const { nodeID } = ctx.params;
      if (nodeID) {
        this.inflightAtReport.set(nodeID, this.inflight.get(nodeID) ?? 0);
        this.pools.refresh(nodeID);
      }
      this.queue.release((p, ahead) => this.admit(p, ahead));
    },
  },

  methods: {
    /**
     * `select`'s work. The api, beside it in the router process, calls this
     * directly: a Moleculer action call per request costs more than the choice.
     */
    async selectNode(this: This, params: SelectParams): Promise<Selection> {
      const { model, user, affinityKey, exclude = [] } = params;
      const pending: Pending = { request: { model, user, affinityKey }, exclude };
      // first come, first served: nobody passes a request already waiting for the same model
      const queuedAhead = this.queue.length > 0 && this.queue.count((p) => p.request.model === model) > 0;
      const now = queuedAhead ? "wait" : this.pick(pending);
      if (now !== "wait") return now;
      await this.queue.wait(pending);
      if (pending.error) throw pending.error;
      return pending.selection!;
    },

    /** A request this router routed is over (the `router.request.finished` event, or the api directly). */
    requestFinished(this: This, params: Finished): void {
      const { nodeID, ttftMs, outcome } = params;
      const n = (this.inflight.get(nodeID) ?? 1) - 1;
      if (n > 0) this.inflight.set(nodeID, n);
      else this.inflight.delete(nodeID);
      if (ttftMs !== undefined) {
        // exponentially weighted: recent answers count most
        const prev = this.latency.get(nodeID);
        this.latency.set(nodeID, prev === undefined ? ttftMs : prev * 0.8 + ttftMs * 0.2);
      }
      this.pools.refresh(nodeID);
      if (outcome === "ok") this.health.success(nodeID);
      else if (outcome === "node_failed" && this.health.failure(nodeID)) {
        const { failureThreshold, cooldownSecs } = this.settings.router;
        this.logger.warn(`Node ${nodeID} failed ${failureThreshold} times in a row: benched for ${cooldownSecs}s`);
      }
      this.queue.release((p, ahead) => this.admit(p, ahead));
    },

    /** A node for `p` now (its slot reserved), "wait" when every candidate is full or loading, or a 404/503. */
    pick(this: This, p: Pending): Selection | "wait" {
      const { model } = p.request;
      const table = this.table();
      const candidates = this.eligible(model, p.exclude);
      if (candidates.length === 0) {
        const loading = table.initializing(model).filter((n) => !p.exclude.includes(n.id));
        if (loading.length > 0) return "wait";
        if (!table.knows(model)) throw modelNotFound(model);
        throw apiError(503, `No inference node is ready to serve '${model}' right now.`, "no_available_node", {
          param: "model",
          retryAfter: 5,
        });
      }
      const pool = this.strategy.seesFullNodes ? candidates : candidates.filter((c) => busyRatio(c) < 1);
      if (pool.length === 0) return "wait";
      const chosen = this.strategy.select(pool, p.request);
      // a full node chosen means: wait for a slot there (the strategy judged it worth it)
      if (busyRatio(chosen) >= 1) return "wait";
      this.inflight.set(chosen.nodeID, (this.inflight.get(chosen.nodeID) ?? 0) + 1);
      this.lastSelected.set(chosen.nodeID, Date.now());
      this.pools.refresh(chosen.nodeID);
      return { nodeID: chosen.nodeID, machineName: chosen.machineName, runtime: this.runtimeOf(chosen.nodeID) };
    },

    /** Candidates for `model` (see CandidatePools): strategies read them only while they decide. */
    eligible(this: This, model: string, exclude: string[]): Candidate[] {
      return this.pools.eligible(model, exclude);
    },

    /** For the queue: true when `p` got a node (or a final error) and may go. */
    admit(this: This, p: Pending, ahead: number): boolean {
      p.request.waitingAhead = ahead;
      try {
        const r = this.pick(p);
        if (r === "wait") return false;
        p.selection = r;
      } catch (err) {
        p.error = err;
      }
      return true;
    },
  },

  created(this: This) {
    const cfg = this.settings.router;
    this.strategy = createStrategy(cfg.balancerMode);
    this.health = new NodeHealth(cfg.failureThreshold, cfg.cooldownSecs * 1000);
    this.queue = new WaitQueue(cfg.queueLimit, cfg.queueTimeoutSecs * 1000);
    this.inflight = new Map();
    this.inflightAtReport = new Map();
    this.lastSelected = new Map();
    this.latency = new Map();
    type Registry = Service & { table?: NodeTable; externals?: Map<string, Runtime> };
    const registry = (): Registry => {
      const r = this.broker.getLocalService("registry") as Registry | undefined;
      if (!r?.table) throw new Error("the balancer needs the registry service in the same process (SERVICES=router)");
      return r;
    };
    // the registry's table is made in its `created` and kept for its life
    let table: NodeTable | undefined;
    this.table = () => (table ??= registry().table!);
    const counts = {
      inflight: this.inflight,
      atReport: this.inflightAtReport,
      latency: this.latency,
      last: this.lastSelected,
    };
    this.pools = new CandidatePools(() => this.table(), counts, this.health);
    this.runtimeOf = (nodeID) => registry().externals?.get(nodeID);
  },
};

export default BalancerService;
