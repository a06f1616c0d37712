/**
 * The live table of inference nodes, from their heartbeats and Moleculer's
 * `$node.*` events, plus what operators set on them (name, tags, notes,
 * draining), persisted through the db mixin. Runs in the router process; the
 * balancer reads its table directly.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { routerConfig } from "../lib/config";
import type { NodeTable } from "../lib/cluster/node-table";
import { routerCore } from "../lib/core/router-core";
import { nodeView } from "../lib/cluster/node-view";
import type { Heartbeat, NodeSettings } from "../lib/cluster/types";
import { apiError } from "../lib/openai/errors";
import { dbMixin } from "../mixins/db.mixin";
import { ExternalRuntimesMixin, type ExternalRuntime } from "../mixins/external-runtimes.mixin";
import { RegistrySyncMixin } from "../mixins/registry-sync.mixin";

interface SettingsDoc extends NodeSettings {
  _id?: unknown;
  nodeId: string;
}

interface Settings {
  nodeTimeoutSecs: number;
}

interface Vars {
  /** The core's node table and external runtimes (lib/core/router-core.ts), which this service fills. */
  table: NodeTable;
  externals: Map<string, ExternalRuntime>;
  timer: NodeJS.Timeout | null;
  adapter: {
    find(q: { query: object }): Promise<SettingsDoc[]>;
    insert(doc: SettingsDoc): Promise<SettingsDoc>;
    updateMany(query: object, update: object): Promise<unknown>;
    removeMany(query: object): Promise<number>;
  };
}

interface Methods {
  ipOf(nodeID: string): string | null;
  view(id: string): ReturnType<typeof nodeView>;
  saveSettings(id: string, change: Partial<NodeSettings>): Promise<ReturnType<typeof nodeView>>;
  dropExternal(id: string): Promise<boolean>;
  persistSettings(id: string, s: NodeSettings | null): Promise<void>;
  publishSync(): Promise<void>;
  loadSettings(): Promise<void>;
  loadExternals(): Promise<void>;
}

type This = Service<Settings> & Vars & Methods;

const RegistryService: ServiceSchema<Settings, Methods, Vars> = {
  name: "registry",
  mixins: [dbMixin("node_settings"), ExternalRuntimesMixin, RegistrySyncMixin],

  actions: {
    /** GET /api/nodes */
    list: {
      handler(this: This) {
        return this.table.list().map((n) => this.view(n.id));
      },
    },
    /** GET /api/nodes/:id/metrics: the node's samples of the last hour. */
    metrics: {
      params: { id: "string" },
      handler(this: This, ctx: Context<{ id: string }>) {
        this.view(ctx.params.id);
        return { node_id: ctx.params.id, samples: this.table.metrics.of(ctx.params.id) };
      },
    },
    get: {
      visibility: "public",
      params: { id: "string" },
      handler(this: This, ctx: Context<{ id: string }>) {
        return this.view(ctx.params.id);
      },
    },
    updateSettings: {
      visibility: "public",
      params: {
        id: "string",
        name: { type: "string", max: 128, optional: true, nullable: true },
        tags: { type: "array", items: { type: "string", min: 1, max: 64 }, max: 32, optional: true },
        notes: { type: "string", max: 4096, optional: true },
      },
      handler(this: This, ctx: Context<{ id: string; name?: string | null; tags?: string[]; notes?: string }>) {
        const change: Partial<NodeSettings> = {};
        if (ctx.params.name !== undefined) change.displayName = ctx.params.name || null;
        if (ctx.params.tags !== undefined) change.tags = ctx.params.tags;
        if (ctx.params.notes !== undefined) change.notes = ctx.params.notes;
        return this.saveSettings(ctx.params.id, change);
      },
    },
    /** Drain (no new requests; those in flight finish) or undrain a node. */
    drain: {
      visibility: "public",
      params: { id: "string", draining: "boolean" },
      async handler(this: This, ctx: Context<{ id: string; draining: boolean }>) {
        const view = await this.saveSettings(ctx.params.id, { draining: ctx.params.draining });
        this.logger.info(`Node ${ctx.params.id} ${ctx.params.draining ? "is draining" : "takes requests again"}`);
        this.broker.broadcastLocal("registry.changed", { nodeID: ctx.params.id });
        return view;
      },
    },
    /** The node finishes what it runs and leaves the cluster; it is offline from now on. */
    disconnect: {
      visibility: "public",
      params: { id: "string" },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const { id } = ctx.params;
        const node = this.table.get(id);
        this.view(id);
        if (this.externals.has(id)) {
          throw apiError(
            409,
            `${id} is an external runtime: it has no node process to disconnect. Drain or DELETE it.`,
            "node_is_external",
          );
        }
        if (id === this.broker.nodeID) {
          throw apiError(409, `${id} runs in this router's process: stop the router instead.`, "node_is_local");
        }
        if (node?.status === "offline") throw apiError(409, `${id} is offline already.`, "node_offline");
        const answer = await ctx.call<{ active_requests: number }, object>("inference.leave", {}, { nodeID: id });
        this.table.markOffline(id);
        this.broker.broadcastLocal("registry.changed", { nodeID: id });
        this.logger.warn(`Node ${id} was asked to leave; it finishes ${answer.active_requests} request(s) first`);
        return { id, disconnecting: true, active_requests: answer.active_requests };
      },
    },
    remove: {
      visibility: "public",
      params: { id: "string" },
      async handler(this: This, ctx: Context<{ id: string }>) {
        this.view(ctx.params.id);
        await this.dropExternal(ctx.params.id);
        this.table.remove(ctx.params.id);
        await this.adapter.removeMany({ nodeId: ctx.params.id });
        await this.publishSync();
        return { deleted: true, id: ctx.params.id };
      },
    },
    /** The raw node records (metrics read them). */
    records: {
      visibility: "public",
      handler(this: This) {
        return this.table.list();
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
    /** A node's status and whether requests can be sent to it now: the api's readiness (lib/cluster/readiness.ts). */
    nodeState: {
      visibility: "public",
      params: { id: "string" },
      handler(this: This, ctx: Context<{ id: string }>) {
        const { id } = ctx.params;
        return {
          status: this.table.get(id)?.status ?? "unknown",
          reachable: routerCore(this.broker).reachable(id),
        };
      },
    },
  },

  events: {
    "inference.heartbeat"(this: This, ctx: Context<Heartbeat>) {
      const hb = ctx.params;
      if (hb.leaving) {
        // no new requests go there; those in flight finish over their own streams
        if (this.table.markOffline(hb.nodeID)) {
          this.broker.broadcastLocal("registry.changed", { nodeID: hb.nodeID });
          this.logger.warn(`Node ${hb.nodeID} (${hb.machineName}) is leaving: finishing what it runs`);
        }
        return;
      }
      const changed = this.table.upsert(hb);
      // the balancer re-checks its wait queue on every change of load or status
      this.broker.broadcastLocal("registry.changed", { nodeID: hb.nodeID });
      if (changed) {
        this.logger.info(
          `Node ${hb.nodeID} (${hb.machineName}) is ${hb.initializing ? "initializing" : "online"}: ${hb.models.map((m) => m.id).join(", ") || "no models"}`,
        );
      }
    },
    // Moleculer's endpoints of the nodes changed: the next lookup rebuilds the index
    "$services.changed"(this: This) {
      routerCore(this.broker).servicesChanged();
    },
    "$node.disconnected"(this: This, ctx: Context<{ node: { id: string }; unexpected: boolean }>) {
      routerCore(this.broker).servicesChanged();
      if (this.table.markOffline(ctx.params.node.id)) {
        this.broker.broadcastLocal("registry.changed", { nodeID: ctx.params.node.id });
        this.logger.warn(`Node ${ctx.params.node.id} is offline (${ctx.params.unexpected ? "lost" : "left"})`);
      }
    },
  },

  methods: {
    view(this: This, id: string) {
      const n = this.table.get(id);
      if (!n) throw apiError(404, `No node with id '${id}'.`, "node_not_found", { param: "id" });
      return nodeView(n, this.ipOf(id), this.table.settingsOf(id));
    },

    async saveSettings(this: This, id: string, change: Partial<NodeSettings>) {
      this.view(id);
      await this.persistSettings(id, { ...this.table.settingsOf(id), ...change });
      await this.publishSync();
      return this.view(id);
    },

    /** Sets a node's settings in the table and the store (null: back to the defaults). */
    async persistSettings(this: This, id: string, s: NodeSettings | null) {
      this.table.setSettings(id, s);
      if (!s) {
        await this.adapter.removeMany({ nodeId: id });
        return;
      }
      const [existing] = await this.adapter.find({ query: { nodeId: id } });
      if (existing) await this.adapter.updateMany({ nodeId: id }, { $set: s });
      else await this.adapter.insert({ nodeId: id, ...s });
    },

    /** The node settings as the store holds them (at start; on a shared database, again when a peer changes them). */
    async loadSettings(this: This) {
      const docs = await this.adapter.find({ query: { nodeId: { $exists: true } } });
      const stored = new Set(docs.map((d) => d.nodeId));
      for (const [id] of this.table.settingsEntries()) if (!stored.has(id)) this.table.setSettings(id, null);
      for (const doc of docs) {
        this.table.setSettings(doc.nodeId, {
          displayName: doc.displayName,
          tags: doc.tags,
          notes: doc.notes,
          draining: doc.draining,
        });
      }
    },

    ipOf(this: This, nodeID: string): string | null {
      const info = this.broker.registry.nodes.get(nodeID) as { ipList?: string[] } | undefined;
      return info?.ipList?.[0] ?? null;
    },
  },

  created(this: This) {
    this.settings = { ...this.settings, nodeTimeoutSecs: routerConfig().nodeTimeoutSecs };
    const core = routerCore(this.broker);
    core.registry = true;
    this.table = core.table;
    this.externals = core.externals;
    this.timer = null;
  },

  async started(this: This) {
    await this.loadSettings();
    await this.loadExternals();
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
    routerCore(this.broker).registry = false;
  },
};

export default RegistryService;
