/**
 * The balancer as a service: sets up this process's Balancer
 * (lib/routing/balancer.ts) in the router's core, beside the registry whose
 * node table it reads, and exposes it as actions for the ops console and
 * other processes. The api calls the core's balancer directly.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { routerConfig, type RouterConfig } from "../lib/config";
import { routerCore } from "../lib/core/router-core";
import { Balancer, type SelectParams, type Selection } from "../lib/routing/balancer";

export type { Finished, Outcome, SelectParams, Selection } from "../lib/routing/balancer";

interface Settings {
  router: RouterConfig;
}

interface Vars {
  balancer: Balancer;
}

type This = Service<Settings> & Vars;

/** Longest a node may take to load a model asked for by the balancer. */
const LOAD_TIMEOUT_MS = 15 * 60_000;

const BalancerService: ServiceSchema<Settings, Record<string, never>, Vars> = {
  name: "balancer",

  actions: {
    select: {
      visibility: "public",
      handler(this: This, ctx: Context<SelectParams>): Promise<Selection> {
        return this.balancer.select(ctx.params);
      },
    },
    /** What `select` would do for `model` now and why (the ops console's `route`); reserves nothing. */
    explain: {
      visibility: "public",
      params: { model: "string" },
      handler(this: This, ctx: Context<{ model: string }>) {
        return this.balancer.explain(ctx.params.model, this.broker.nodeID);
      },
    },
    stats: {
      visibility: "public",
      handler(this: This) {
        return this.balancer.stats();
      },
    },
  },

  events: {
    "registry.changed"(this: This, ctx: Context<{ nodeID: string | null }>) {
      this.balancer.nodeChanged(ctx.params.nodeID);
    },
  },

  created(this: This) {
    this.settings = { ...this.settings, router: routerConfig() };
    const core = routerCore(this.broker);
    this.balancer = new Balancer(
      this.settings.router,
      core.table,
      (id) => core.runtimeOf(id),
      (msg) => this.logger.warn(msg),
    );
    core.balancer = this.balancer;
    // a model no node has loaded is loaded on demand; a big one may take minutes (the queue's timeout bounds the wait)
    this.balancer.loader = (nodeID, model) =>
      this.broker.call("inference.load", { model }, { nodeID, timeout: LOAD_TIMEOUT_MS });
  },

  started(this: This) {
    if (!routerCore(this.broker).registry) {
      throw new Error("the balancer needs the registry service in the same process (SERVICES=router)");
    }
  },

  stopped(this: This) {
    const core = routerCore(this.broker);
    if (core.balancer === this.balancer) core.balancer = null;
  },
};

export default BalancerService;
