/**
 * The live table of inference nodes, from their heartbeats and Moleculer's
 * `$node.*` events. Runs in the router process; the balancer reads it locally.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { routerConfig } from "../lib/config";
import { NodeTable } from "../lib/cluster/node-table";
import { nodeView } from "../lib/cluster/node-view";
import type { Heartbeat, NodeRecord } from "../lib/cluster/types";

interface Settings {
  nodeTimeoutSecs: number;
}

interface Vars {
  table: NodeTable;
  timer: NodeJS.Timeout | null;
}

interface Methods {
  ipOf(nodeID: string): string | null;
}

type This = Service<Settings> & Vars & Methods;

const RegistryService: ServiceSchema<Settings, Methods, Vars> = {
  name: "registry",

  settings: {
    nodeTimeoutSecs: routerConfig().nodeTimeoutSecs,
  },

  actions: {
    /** GET /api/nodes */
    list: {
      handler(this: This) {
        return this.table.list().map((n) => nodeView(n, this.ipOf(n.id)));
      },
    },
    get: {
      visibility: "public",
      params: { id: "string" },
      handler(this: This, ctx: Context<{ id: string }>) {
        const n = this.table.get(ctx.params.id);
        return n ? nodeView(n, this.ipOf(n.id)) : null;
      },
    },
    /** Online nodes with the model (raw records, for the balancer) and whether the model is known at all. */
    serving: {
      visibility: "public",
      params: { model: "string" },
      handler(this: This, ctx: Context<{ model: string }>): { nodes: NodeRecord[]; known: boolean } {
        const nodes = this.table.serving(ctx.params.model);
        return { nodes, known: nodes.length > 0 || this.table.knows(ctx.params.model) };
      },
    },
    models: {
      visibility: "public",
      handler(this: This) {
        return this.table.models();
      },
    },
    summary: {
      visibility: "public",
      handler(this: This) {
        const all = this.table.list();
        return { online: all.filter((n) => n.status === "online").length, total: all.length };
      },
    },
  },

  events: {
    "inference.heartbeat"(this: This, ctx: Context<Heartbeat>) {
      const hb = ctx.params;
      const changed = this.table.upsert(hb);
      // the balancer re-checks its wait queue on every change of load or status
      this.broker.broadcastLocal("registry.changed", { nodeID: hb.nodeID });
      if (changed) {
        this.logger.info(
          `Node ${hb.nodeID} (${hb.machineName}) is ${hb.initializing ? "initializing" : "online"}: ${hb.models.map((m) => m.id).join(", ") || "no models"}`,
        );
      }
    },
    "$node.disconnected"(this: This, ctx: Context<{ node: { id: string }; unexpected: boolean }>) {
      if (this.table.markOffline(ctx.params.node.id)) {
        this.broker.broadcastLocal("registry.changed", { nodeID: ctx.params.node.id });
        this.logger.warn(`Node ${ctx.params.node.id} is offline (${ctx.params.unexpected ? "lost" : "left"})`);
      }
    },
  },

  methods: {
    ipOf(this: This, nodeID: string): string | null {
      const info = this.broker.registry.nodes.get(nodeID) as { ipList?: string[] } | undefined;
      return info?.ipList?.[0] ?? null;
    },
  },

  created(this: This) {
    this.table = new NodeTable((nodeID) => {
      const endpoint = this.broker.registry.getActionEndpointByNodeId("inference.chat", nodeID);
      return endpoint?.isAvailable === true;
    });
    this.timer = null;
  },

  started(this: This) {
    const timeoutMs = this.settings.nodeTimeoutSecs * 1000;
    this.timer = setInterval(
      () => {
        for (const id of this.table.expire(Date.now(), timeoutMs)) {
          this.logger.warn(`Node ${id} is offline (no heartbeat for ${this.settings.nodeTimeoutSecs}s)`);
        }
      },
      Math.min(timeoutMs / 4, 5000),
    );
  },

  stopped(this: This) {
    if (this.timer) clearInterval(this.timer);
  },
};

export default RegistryService;
