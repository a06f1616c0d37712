/**
 * Picks the inference node for a request with the strategy that
 * LLM_ROUTER_LOAD_BALANCER_MODE names. Runs beside the api, so choosing costs
 * no network hop; it counts this router's in-flight requests per node.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { routerConfig } from "../lib/config";
import type { NodeRecord } from "../lib/cluster/types";
import { apiError, modelNotFound } from "../lib/openai/errors";
import { createStrategy, type Candidate, type Strategy } from "../lib/strategies";
import { NodeHealth } from "../lib/cluster/node-health";

interface Settings {
  mode: string;
  failureThreshold: number;
  cooldownSecs: number;
}

interface Vars {
  strategy: Strategy;
  health: NodeHealth;
  inflight: Map<string, number>;
  lastSelected: Map<string, number>;
  latency: Map<string, number>;
}

interface Methods {
  toCandidate(n: NodeRecord, model: string): Candidate;
}

type This = Service<Settings> & Vars & Methods;

export interface Selection {
  nodeID: string;
  machineName: string;
}

const BalancerService: ServiceSchema<Settings, Methods, Vars> = {
  name: "balancer",

  settings: {
    mode: routerConfig().balancerMode,
    failureThreshold: routerConfig().failureThreshold,
    cooldownSecs: routerConfig().cooldownSecs,
  },

  actions: {
    select: {
      visibility: "public",
      async handler(
        this: This,
        ctx: Context<{ model: string; user?: string; affinityKey?: string; exclude?: string[] }>,
      ): Promise<Selection> {
        const { model, exclude = [] } = ctx.params;
        const { nodes, known } = await ctx.call<{ nodes: NodeRecord[]; known: boolean }, { model: string }>(
          "registry.serving",
          { model },
        );
        const untried = nodes.filter((n) => !exclude.includes(n.id));
        // benched nodes only when nothing else is left
        const healthy = untried.filter((n) => !this.health.isBenched(n.id));
        const candidates = (healthy.length ? healthy : untried).map((n) => this.toCandidate(n, model));
        if (candidates.length === 0) {
          if (!known) throw modelNotFound(model);
          throw apiError(503, `No inference node is ready to serve '${model}' right now.`, "no_available_node", {
            param: "model",
          });
        }
        const chosen = this.strategy.select(candidates, {
          model,
          user: ctx.params.user,
          affinityKey: ctx.params.affinityKey,
        });
        this.inflight.set(chosen.nodeID, (this.inflight.get(chosen.nodeID) ?? 0) + 1);
        this.lastSelected.set(chosen.nodeID, Date.now());
        return { nodeID: chosen.nodeID, machineName: chosen.machineName };
      },
    },
    stats: {
      visibility: "public",
      handler(this: This) {
        return {
          mode: this.strategy.name,
          inflight: Object.fromEntries(this.inflight),
          benched: this.health.benched(),
        };
      },
    },
  },

  events: {
    /** The api says a request it routed is over (local only: in-flight counts are per router). */
    "router.request.finished"(
      this: This,
      ctx: Context<{ nodeID: string; outcome: "ok" | "node_failed" | "client_error" }>,
    ) {
      if (ctx.params.outcome === "ok") this.health.success(ctx.params.nodeID);
      else if (ctx.params.outcome === "node_failed" && this.health.failure(ctx.params.nodeID)) {
        this.logger.warn(
          `Node ${ctx.params.nodeID} failed ${this.settings.failureThreshold} times in a row: benched for ${this.settings.cooldownSecs}s`,
        );
      }
      const n = (this.inflight.get(ctx.params.nodeID) ?? 1) - 1;
      if (n > 0) this.inflight.set(ctx.params.nodeID, n);
      else this.inflight.delete(ctx.params.nodeID);
    },
  },

  methods: {
    toCandidate(this: This, n: NodeRecord, model: string): Candidate {
      const m = n.models.find((x) => x.id === model);
      const utils = n.gpus.map((g) => g.utilization).filter((u): u is number => u !== null);
      const vramTotal = n.gpus.reduce((a, g) => a + g.vramTotal, 0);
      const vramUsed = n.gpus.reduce((a, g) => a + g.vramUsed, 0);
      return {
        nodeID: n.id,
        machineName: n.machineName,
        capacity: m?.parallel ?? n.capacity,
        active: Math.max(this.inflight.get(n.id) ?? 0, m?.active ?? 0),
        queued: m?.queued ?? 0,
        cpuUsage: n.cpu.usage,
        gpuUtilization: utils.length ? utils.reduce((a, b) => a + b, 0) / utils.length : null,
        vramFreeRatio: vramTotal > 0 ? 1 - vramUsed / vramTotal : null,
        tokensPerSecond: n.tokensPerSecond,
        latencyMs: this.latency.get(n.id) ?? null,
        lastSelectedAt: this.lastSelected.get(n.id) ?? 0,
      };
    },
  },

  created(this: This) {
    this.strategy = createStrategy(this.settings.mode);
    this.health = new NodeHealth(this.settings.failureThreshold, this.settings.cooldownSecs * 1000);
    this.inflight = new Map();
    this.lastSelected = new Map();
    this.latency = new Map();
  },
};

export default BalancerService;
