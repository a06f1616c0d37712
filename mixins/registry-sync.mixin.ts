/**
 * Router replicas each run a registry. Heartbeats reach every one of them;
 * what operators set (node names, tags, notes, draining, external runtimes)
 * is kept in step here.
 *
 * On a shared database (routers as peers: PostgreSQL, MongoDB) the database
 * holds it: a change is written there, then every other registry is told to
 * read it again (`registry.reload`) and the change is answered once they
 * have (a drain holds on every router when it is answered); each reads it
 * again every minute besides, and a registry that starts reads it at start.
 *
 * On embedded stores (each replica its own NeDB files) each change is
 * broadcast as a snapshot that the other registries adopt and persist, and a
 * registry that joins later adopts the snapshot of one that was running
 * before it. Last writer wins.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { NodeTable } from "../lib/cluster/node-table";
import type { NodeSettings } from "../lib/cluster/types";
import { confirmOnPeers } from "../lib/cluster/confirm-peers";
import { storageConfig } from "../lib/config";
import type { ExternalRuntime } from "./external-runtimes.mixin";

export interface RegistrySnapshot {
  /** When the sending registry started (epoch ms): the older one's state wins on join. */
  startedAt: number;
  settings: Array<NodeSettings & { nodeId: string }>;
  externals: ExternalRuntime[];
}

interface Vars {
  table: NodeTable;
  externals: Map<string, ExternalRuntime>;
  startedAt: number;
  /** A database every registry shares (then it, not snapshots, keeps them in step). */
  sharedStore: boolean;
  reloadTimer: NodeJS.Timeout | null;
  adapter: {
    find(q: { query: object }): Promise<Array<{ id?: string }>>;
    insert(doc: object): Promise<unknown>;
    removeMany(query: object): Promise<unknown>;
  };
}

interface Methods {
  snapshot(): RegistrySnapshot;
  publishSync(): Promise<void>;
  applySnapshot(s: RegistrySnapshot): Promise<void>;
  loadSettings(): Promise<void>;
  reload(): Promise<void>;
  loadExternals(opts?: { waitForChecks?: boolean }): Promise<void>;
  forgetExternal(id: string): void;
  persistSettings(id: string, s: NodeSettings | null): Promise<void>;
  dropExternal(id: string): Promise<boolean>;
  checkExternal(id: string): Promise<boolean>;
  watchExternal(rt: ExternalRuntime): void;
}

type This = Service & Vars & Methods;

/** Shared database: how often a registry reads the settings again (a change it was not told of). */
const RELOAD_MS = 60_000;

const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "registry",

  actions: {
    /** A registry that started before this one hands over its state (see `$node.connected`). */
    adopt: {
      visibility: "public",
      async handler(this: This, ctx: Context<RegistrySnapshot>) {
        if (this.sharedStore || ctx.params.startedAt >= this.startedAt) return { adopted: false };
        await this.applySnapshot(ctx.params);
        this.logger.info(`Adopted the node settings and external runtimes of ${ctx.nodeID}`);
        return { adopted: true };
      },
    },
    /** Shared database: another registry changed a node's settings or the runtimes; read them again before it answers. */
    reload: {
      visibility: "public",
      async handler(this: This) {
        await this.reload();
        return { ok: true };
      },
    },
  },

  events: {
    "registry.sync"(this: This, ctx: Context<RegistrySnapshot>) {
      if (ctx.nodeID === this.broker.nodeID || this.sharedStore) return;
      this.applySnapshot(ctx.params).catch((err: Error) => this.logger.warn(`registry sync: ${err.message}`));
    },
    // a replica joined: offer it our state (it keeps it only if we are older)
    "$node.connected"(this: This, ctx: Context<{ node: { id: string; services?: Array<{ name: string }> } }>) {
      const { node } = ctx.params;
      if (this.sharedStore || node.id === this.broker.nodeID || !node.services?.some((s) => s.name === "registry")) {
        return;
      }
      this.broker.call("registry.adopt", this.snapshot(), { nodeID: node.id }).catch(() => undefined);
    },
  },

  methods: {
    snapshot(this: This): RegistrySnapshot {
      return {
        startedAt: this.startedAt,
        settings: this.table.settingsEntries().map(([nodeId, s]) => ({ nodeId, ...s })),
        externals: [...this.externals.values()],
      };
    },

    /** A change was made here: the other registries learn it (shared database: before this resolves). */
    async publishSync(this: This) {
      if (!this.sharedStore) {
        this.broker.broadcast("registry.sync", this.snapshot()).catch((err: Error) => {
          this.logger.warn(`node settings could not be sent to the other registries: ${err.message}`);
        });
        return;
      }
      await confirmOnPeers(this.broker, "registry.reload", this.logger);
    },

    /** Shared database: the node settings and external runtimes as it holds them now. */
    async reload(this: This) {
      await this.loadSettings();
      const stored = new Set((await this.adapter.find({ query: { kind: "external" } })).map((d) => d.id));
      for (const id of [...this.externals.keys()]) {
        if (stored.has(id)) continue;
        this.forgetExternal(id);
        this.table.remove(id);
      }
      await this.loadExternals({ waitForChecks: true });
      this.broker.broadcastLocal("registry.changed", { nodeID: null });
    },

    async applySnapshot(this: This, s: RegistrySnapshot) {
      const incoming = new Set(s.settings.map((x) => x.nodeId));
      for (const [id] of this.table.settingsEntries()) {
        if (!incoming.has(id)) await this.persistSettings(id, null);
      }
      for (const { nodeId, ...settings } of s.settings) await this.persistSettings(nodeId, settings);

      const wanted = new Map(s.externals.map((rt) => [rt.id, rt]));
      for (const id of [...this.externals.keys()]) if (!wanted.has(id)) await this.dropExternal(id);
      for (const rt of wanted.values()) {
        if (this.externals.has(rt.id)) {
          this.externals.set(rt.id, rt);
          continue;
        }
        // one shared store (MongoDB) has it already
        if (!(await this.adapter.find({ query: { kind: "external", id: rt.id } })).length) {
          await this.adapter.insert({ kind: "external", ...rt });
        }
        this.externals.set(rt.id, rt);
        this.watchExternal(rt);
        void this.checkExternal(rt.id);
      }
      this.broker.broadcastLocal("registry.changed", { nodeID: null });
    },
  },

  created(this: This) {
    this.startedAt = Date.now();
    const { databaseUrl, mongoUri } = storageConfig();
    this.sharedStore = Boolean(databaseUrl || mongoUri);
    this.reloadTimer = null;
  },

  started(this: This) {
    if (!this.sharedStore) return;
    this.reloadTimer = setInterval(
      () => void this.reload().catch((err: Error) => this.logger.warn(`node settings not read again: ${err.message}`)),
      RELOAD_MS,
    );
  },

  stopped(this: This) {
    if (this.reloadTimer) clearInterval(this.reloadTimer);
  },
};

// as the external-runtimes mixin: it relies on the registry's vars, typed above
export const RegistrySyncMixin = schema as unknown as Partial<ServiceSchema>;
