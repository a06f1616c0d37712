/**
 * The live node table, kept from heartbeats and connect/disconnect events.
 * Pure: time comes in as arguments, so it is tested without a broker.
 */
import { MetricHistory, sampleOf } from "./metric-history";
import { DEFAULT_NODE_SETTINGS, type Heartbeat, type NodeRecord, type NodeSettings } from "./types";

export interface ModelEntry {
  id: string;
  /** First time any node reported it (s epoch), for OpenAI's `created`. */
  created: number;
  /** `loaded` on some node now, or `available`: on a node's disk, loaded by the first request. */
  status: "loaded" | "available";
  /** Nodes that have it loaded. */
  nodes: string[];
  /** Nodes that have it on disk, not loaded (or loading): any can load it. */
  available_on: string[];
}

/** A node's entry for `model` in its catalog (the model files it has), if any. */
export function catalogEntry(n: NodeRecord, model: string) {
  return n.catalog?.find((c) => c.id === model);
}

/**
 * A heartbeat as a table row (without `sentAt`). Built field by field, not
 * with object spread: V8 gives spread copies of these objects slow property
 * access, and the balancer reads every row of the table for every request.
 */
function recordOf(hb: Heartbeat, status: NodeRecord["status"], registeredAt: string, lastSeen: string): NodeRecord {
  const rec: NodeRecord = {
    nodeID: hb.nodeID,
    machineName: hb.machineName,
    engine: hb.engine,
    initializing: hb.initializing,
    models: hb.models,
    active: hb.active,
    queued: hb.queued,
    capacity: hb.capacity,
    cpu: hb.cpu,
    memory: hb.memory,
    gpuBackend: hb.gpuBackend,
    gpus: hb.gpus,
    tokensPerSecond: hb.tokensPerSecond,
    id: hb.nodeID,
    status,
    registeredAt,
    lastSeen,
  };
  // whatever else the heartbeat carries (leaving, baseUrl, fields of newer nodes)
  const extra = rec as unknown as Record<string, unknown>;
  for (const key of Object.keys(hb)) {
    if (key !== "sentAt" && !(key in rec)) extra[key] = (hb as unknown as Record<string, unknown>)[key];
  }
  return rec;
}

/** The same model IDs in the same order. */
function sameModels(a: Heartbeat["models"], b: Heartbeat["models"]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].id !== b[i].id) return false;
  return true;
}

export class NodeTable {
  private readonly nodes = new Map<string, NodeRecord>();
  /** Node IDs in ID order, kept until a node is added or removed (heartbeats only replace records). */
  private order: string[] | null = null;
  private readonly modelFirstSeen = new Map<string, number>();
  private readonly settings = new Map<string, NodeSettings>();
  /** Each node's recent samples, for the dashboard's charts. */
  readonly metrics = new MetricHistory();
  private shape = 0;

  /**
   * Goes up whenever which nodes serve which model may have changed: a node
   * added or removed, a status, a model list or settings changed, or
   * `touch()` (reachability). A heartbeat that only updates figures leaves it.
   */
  get version(): number {
    return this.shape;
  }

  /** Whether nodes are reachable may have changed (the transporter's view of the services). */
  touch(): void {
    this.shape++;
  }

  /**
   * @param reachable whether requests can be sent to a node now. A heartbeat
   * can arrive before the transporter has announced the node's actions.
   */
  constructor(private readonly reachable: (nodeID: string) => boolean = () => true) {}

  private ready(n: NodeRecord): boolean {
    return n.status === "online" && this.reachable(n.id);
  }

  settingsOf(nodeID: string): NodeSettings {
    return this.settings.get(nodeID) ?? DEFAULT_NODE_SETTINGS;
  }

  setSettings(nodeID: string, s: NodeSettings | null): void {
    if (s) this.settings.set(nodeID, s);
    else this.settings.delete(nodeID);
    this.shape++;
  }

  /** Every node's settings that differ from the defaults (set by an operator). */
  settingsEntries(): Array<[string, NodeSettings]> {
    return [...this.settings];
  }

  /** Forgets a node (it comes back with its next heartbeat); returns false when unknown. */
  remove(nodeID: string): boolean {
    this.settings.delete(nodeID);
    this.metrics.remove(nodeID);
    this.order = null;
    this.shape++;
    return this.nodes.delete(nodeID);
  }

  /** Applies a heartbeat; returns true when the node is new or changed status. */
  upsert(hb: Heartbeat, now = Date.now()): boolean {
    const prev = this.nodes.get(hb.nodeID);
    if (!prev) this.order = null;
    const status = hb.initializing ? "initializing" : "online";
    const rec = recordOf(hb, status, prev?.registeredAt ?? new Date(now).toISOString(), new Date(now).toISOString());
    this.nodes.set(hb.nodeID, rec);
    if (!prev || prev.status !== status || !sameModels(prev.models, hb.models)) this.shape++;
    this.metrics.add(hb.nodeID, sampleOf(rec, now));
    for (const m of [...hb.models, ...(hb.catalog ?? [])]) {
      if (!this.modelFirstSeen.has(m.id)) this.modelFirstSeen.set(m.id, Math.floor(now / 1000));
    }
    return !prev || prev.status !== status;
  }

  /** Marks a node offline (process gone or silent); returns true when that changed anything. */
  markOffline(nodeID: string): boolean {
    const n = this.nodes.get(nodeID);
    if (!n || n.status === "offline") return false;
    n.status = "offline";
    n.active = 0;
    n.queued = 0;
    this.shape++;
    return true;
  }

  /** Marks silent nodes offline; returns their IDs. */
  expire(now: number, timeoutMs: number): string[] {
    const gone: string[] = [];
    for (const n of this.nodes.values()) {
      if (n.status !== "offline" && now - Date.parse(n.lastSeen) > timeoutMs) {
        this.markOffline(n.id);
        gone.push(n.id);
      }
    }
    return gone;
  }

  get(nodeID: string): NodeRecord | undefined {
    return this.nodes.get(nodeID);
  }

  list(): NodeRecord[] {
    this.order ??= [...this.nodes.keys()].sort((a, b) => a.localeCompare(b));
    return this.order.map((id) => this.nodes.get(id)!);
  }

  /** Online, reachable, not draining nodes that have `model` loaded. */
  serving(model: string): NodeRecord[] {
    return this.list().filter((n) => this.serves(n, model));
  }

  /** Whether `n` (a row of `list()`) serves `model` now: online, reachable, not draining, model loaded. */
  serves(n: NodeRecord, model: string): boolean {
    return this.ready(n) && !this.settingsOf(n.id).draining && n.models.some((m) => m.id === model);
  }

  /** Nodes that report `model` but are still loading (they will serve soon). */
  initializing(model: string): NodeRecord[] {
    return this.list().filter((n) => n.status === "initializing" && n.models.some((m) => m.id === model));
  }

  /** Whether any node, in any state, reported `model`, loaded or on its disk. */
  knows(model: string): boolean {
    return (
      this.modelFirstSeen.has(model) &&
      this.list().some((n) => n.models.some((m) => m.id === model) || catalogEntry(n, model) !== undefined)
    );
  }

  /**
   * Nodes that could load `model` now: online, reachable, not draining, with
   * the file on disk and not loaded, loading or failed there.
   */
  loadable(model: string): NodeRecord[] {
    return this.list().filter(
      (n) => this.ready(n) && !this.settingsOf(n.id).draining && catalogEntry(n, model)?.state === "available",
    );
  }

  /** Nodes loading `model` now (a request for it waits for them). */
  loading(model: string): NodeRecord[] {
    return this.list().filter(
      (n) => this.ready(n) && !this.settingsOf(n.id).draining && catalogEntry(n, model)?.state === "loading",
    );
  }

  /** Why `model` failed to load on the nodes that have it, if it did on any. */
  loadFailures(model: string): Array<{ node: string; error: string }> {
    const out: Array<{ node: string; error: string }> = [];
    for (const n of this.list()) {
      const c = catalogEntry(n, model);
      if (this.ready(n) && c?.state === "failed") out.push({ node: n.id, error: c.error ?? "unknown" });
    }
    return out;
  }

  /** Models on online, reachable, not draining nodes: loaded, or on their disks to be loaded on demand. */
  models(): ModelEntry[] {
    const byId = new Map<string, ModelEntry>();
    const entry = (id: string) => {
      let e = byId.get(id);
      if (!e) {
        e = { id, created: this.modelFirstSeen.get(id) ?? 0, status: "available", nodes: [], available_on: [] };
        byId.set(id, e);
      }
      return e;
    };
    for (const n of this.list()) {
      if (!this.ready(n) || this.settingsOf(n.id).draining) continue;
      for (const m of n.models) {
        const e = entry(m.id);
        e.nodes.push(n.id);
        e.status = "loaded";
      }
      for (const c of n.catalog ?? []) {
        if (c.state === "available" || c.state === "loading" || c.state === "unloading")
          entry(c.id).available_on.push(n.id);
      }
    }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }
}
