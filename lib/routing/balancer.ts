/**
 * The balancer of one router process: picks the node for a request with the
 * strategy that LLM_ROUTER_LOAD_BALANCER_MODE names, counts this router's
 * in-flight requests per node, benches failing nodes, smooths each node's
 * time to first token, and keeps the wait queue for requests that find every
 * node with their model full or still loading. A model no node has loaded
 * is loaded on the node that can take it soonest (lib/routing/placement.ts)
 * while its requests wait in that queue. It lives in the router's core
 * (lib/core/router-core.ts): the api calls it directly, services/balancer.service.ts
 * exposes it as actions.
 */
import { NodeHealth } from "../cluster/node-health";
import { catalogEntry } from "../cluster/node-table";
import type { NodeTable } from "../cluster/node-table";
import { apiError, modelNotFound } from "../openai/errors";
import type { Runtime } from "../runtimes/openai-upstream";
import { createStrategy, type Candidate, type RouteRequest, type Strategy } from "../strategies";
import { busyRatio } from "../strategies/types";
import { CandidatePools } from "./candidates";
import { explainRoute } from "./explain";
import { WaitQueue } from "./wait-queue";
import { placeLoad } from "./placement";

export interface Selection {
  nodeID: string;
  machineName: string;
  /** Set when the node is an external runtime reached over HTTP. */
  runtime?: Runtime;
  /** How long the request waited for its model to be loaded (ms), when it did. */
  loadMs?: number;
  /** When it waited in the queue: how many stood ahead of it then, and for how long (ms). */
  queue?: { ahead: number; waitedMs: number };
}

/** Asks a node to load a model; resolves once it is loaded. */
export type Loader = (nodeID: string, model: string) => Promise<unknown>;

/** How long after a load this router asked for is done its requests wait for the node's heartbeat saying so. */
const LOADED_GRACE_MS = 3_000;

/** How long a node where a load failed is not asked to load that model again. */
const LOAD_FAILURE_MS = 60_000;

export type Outcome = "ok" | "node_failed" | "client_error" | "other";

export interface SelectParams {
  model: string;
  user?: string;
  affinityKey?: string;
  /** A node to take while it has a free slot, whatever the strategy says (it holds the conversation's cache). */
  preferNode?: string;
  exclude?: string[];
  /** Longest wait in the queue (ms) when shorter than the queue's own (a model with fallbacks). */
  waitMs?: number;
  /** Its place in the wait queue: higher priority first, fair across keys within one (lib/routing/wait-queue.ts). */
  priority?: number;
  /** The API key (or user) it came with, for fairness. */
  fairKey?: string;
}

export interface Finished {
  nodeID: string;
  outcome: Outcome;
  ttftMs?: number;
}

export interface BalancerOptions {
  balancerMode: string;
  failureThreshold: number;
  cooldownSecs: number;
  queueLimit: number;
  queueTimeoutSecs: number;
}

interface Pending {
  request: RouteRequest;
  exclude: string[];
  preferNode?: string;
  selection?: Selection;
  error?: unknown;
  /** When it began waiting for its model to load. */
  loadSince?: number;
}

export class Balancer {
  readonly strategy: Strategy;
  readonly health: NodeHealth;
  private readonly queue: WaitQueue<Pending>;
  private readonly inflight = new Map<string, number>();
  /** This router's in-flight count for a node when its last heartbeat arrived. */
  private readonly inflightAtReport = new Map<string, number>();
  private readonly lastSelected = new Map<string, number>();
  private readonly latency = new Map<string, number>();
  /** Each model's candidates, kept between decisions. */
  private readonly pools: CandidatePools;
  /** Loads this router asked for and not yet finished: model → node. */
  private readonly loads = new Map<string, { node: string; doneAt?: number }>();
  /** Loads that failed: `node model` → when, and why. */
  private readonly loadFailed = new Map<string, { at: number; error: unknown }>();
  /** Asks a node to load a model (services/balancer.service.ts); unset: no loads on demand. */
  loader: Loader | null = null;

  constructor(
    private readonly opts: BalancerOptions,
    private readonly table: NodeTable,
    private readonly runtimeOf: (nodeID: string) => Runtime | undefined,
    private readonly warn: (message: string) => void,
  ) {
    this.strategy = createStrategy(opts.balancerMode);
    this.health = new NodeHealth(opts.failureThreshold, opts.cooldownSecs * 1000);
    this.queue = new WaitQueue(opts.queueLimit, opts.queueTimeoutSecs * 1000);
    const counts = {
      inflight: this.inflight,
      atReport: this.inflightAtReport,
      latency: this.latency,
      last: this.lastSelected,
    };
    this.pools = new CandidatePools(() => this.table, counts, this.health);
  }

  /** A node for the request, its slot reserved: at once, after a wait in the queue, or a 404/503. */
  async select(params: SelectParams): Promise<Selection> {
    const { model, user, affinityKey, preferNode, exclude = [], waitMs, priority, fairKey } = params;
    const pending: Pending = { request: { model, user, affinityKey }, exclude, preferNode };
    // nobody passes a request already waiting for the same model (the queue orders them by priority and key)
    const queuedAhead = this.queue.length > 0 && this.queue.count((p) => p.request.model === model) > 0;
    const now = queuedAhead ? "wait" : this.pick(pending);
    if (now !== "wait") return now;
    // behind others for a model being loaded: it waits for that load too
    if (
      queuedAhead &&
      this.loader &&
      this.candidates(model, exclude).length === 0 &&
      this.loadInProgress(model, exclude)
    )
      pending.loadSince = Date.now();
    let queued: { ahead: number; waitedMs: number };
    try {
      queued = await this.queue.wait(pending, waitMs, { priority, key: fairKey });
    } catch (err) {
      // a load failure while it waited says more than the timeout that followed it
      throw this.loadFailure(model, exclude) ?? err;
    }
    if (pending.error) throw pending.error;
    return { ...pending.selection!, queue: queued };
  }

  /** A request this router routed is over: its slot is free, and how it went counts for the node. */
  finished(params: Finished): void {
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
      this.warn(
        `Node ${nodeID} failed ${this.opts.failureThreshold} times in a row: benched for ${this.opts.cooldownSecs}s`,
      );
    }
    this.release();
  }

  /** The registry's table changed (a heartbeat of `nodeID`, or anything when null): waiting requests may go. */
  nodeChanged(nodeID: string | null): void {
    if (nodeID) {
      this.inflightAtReport.set(nodeID, this.inflight.get(nodeID) ?? 0);
      this.pools.refresh(nodeID);
    }
    this.release();
  }

  /** What `select` would do for `model` now and why (the ops console's `route`); reserves nothing. */
  explain(model: string, router: string) {
    return explainRoute({
      router,
      model,
      strategy: this.strategy,
      candidates: this.candidates(model),
      nodes: this.table.list(),
      serving: this.table.serving(model).map((n) => n.id),
      draining: (id) => this.table.settingsOf(id).draining,
      benched: (id) => this.health.isBenched(id),
      queued: this.queue.count((p) => p.request.model === model),
    });
  }

  /** A key's priority changed: its requests waiting in the queue take the new one. */
  reprioritize(fairKey: string, priority: number): number {
    return this.queue.reprioritize(fairKey, priority);
  }

  /** The candidates for `model` now (strategies read them only while they decide). */
  candidates(model: string, exclude: string[] = []): Candidate[] {
    return this.pools.eligible(model, exclude);
  }

  stats() {
    return {
      mode: this.strategy.name,
      inflight: Object.fromEntries(this.inflight),
      benched: this.health.benched(),
      queued: this.queue.length,
      loading: Object.fromEntries([...this.loads].map(([model, l]) => [model, l.node])),
    };
  }

  private release(): void {
    this.queue.release((p, ahead) => this.admit(p, ahead));
  }

  /** A node for `p` now (its slot reserved), "wait" when every candidate is full or loading, or a 404/503. */
  private pick(p: Pending): Selection | "wait" {
    const { model } = p.request;
    const candidates = this.candidates(model, p.exclude);
    if (candidates.length === 0) {
      if (this.waitForLoad(model, p)) {
        p.loadSince ??= Date.now();
        return "wait";
      }
      const loading = this.table.initializing(model).filter((n) => !p.exclude.includes(n.id));
      if (loading.length > 0) return "wait";
      const failed = this.loadFailure(model, p.exclude);
      if (failed) throw failed;
      if (!this.table.knows(model)) throw modelNotFound(model);
      const onDisk = this.table.loadable(model).filter((n) => !p.exclude.includes(n.id));
      if (this.loader && onDisk.length > 0) {
        throw apiError(
          503,
          `The model '${model}' does not fit on any node that has it (${onDisk.map((n) => n.id).join(", ")}): ` +
            "larger than their memory budgets, or their memory is held by pinned models.",
          "model_does_not_fit",
          { param: "model" },
        );
      }
      throw apiError(503, `No inference node is ready to serve '${model}' right now.`, "no_available_node", {
        param: "model",
        retryAfter: 5,
      });
    }
    const pool = this.strategy.seesFullNodes ? candidates : candidates.filter((c) => busyRatio(c) < 1);
    if (pool.length === 0) return "wait";
    // a continued conversation goes back to its node while that has room: its KV cache holds the prefix
    const preferred = p.preferNode ? pool.find((c) => c.nodeID === p.preferNode && busyRatio(c) < 1) : undefined;
    const chosen = preferred ?? this.strategy.select(pool, p.request);
    // a full node chosen means: wait for a slot there (the strategy judged it worth it)
    if (busyRatio(chosen) >= 1) return "wait";
    this.inflight.set(chosen.nodeID, (this.inflight.get(chosen.nodeID) ?? 0) + 1);
    this.lastSelected.set(chosen.nodeID, Date.now());
    this.pools.refresh(chosen.nodeID);
    const loadMs = p.loadSince === undefined ? undefined : Date.now() - p.loadSince;
    return { nodeID: chosen.nodeID, machineName: chosen.machineName, runtime: this.runtimeOf(chosen.nodeID), loadMs };
  }

  /**
   * No node has `model` loaded: true when one is loading it (this router's
   * load, or another's seen in the heartbeats) or one was just asked to,
   * so the request waits for it.
   */
  private waitForLoad(model: string, p: Pending): boolean {
    if (!this.loader) return false;
    if (this.loadInProgress(model, p.exclude)) return true;
    const now = Date.now();
    const nodes = this.table
      .loadable(model)
      .filter((n) => !p.exclude.includes(n.id) && !this.recentlyFailed(n.id, model, now));
    const place = placeLoad(nodes, model, (n) => n.active + n.queued + (this.inflight.get(n.id) ?? 0));
    // no room now, but once the requests on a node's models finish: wait for that (each heartbeat looks again)
    if (!place) return placeLoad(nodes, model, () => 0, { ignoreBusy: true }) !== null;
    this.startLoad(place.nodeID, model, place.evictions);
    return true;
  }

  /** This router's load of `model`, or another's seen in the heartbeats (on a node not excluded). */
  private loadInProgress(model: string, exclude: readonly string[]): boolean {
    const mine = this.loads.get(model);
    if (mine && (mine.doneAt === undefined || !this.loadSeen(model, mine.node, mine.doneAt))) return true;
    if (mine) this.loads.delete(model);
    return this.table.loading(model).some((n) => !exclude.includes(n.id));
  }

  /**
   * Whether the node's heartbeats have caught up with a load of `model` done
   * at `doneAt`: it shows the model loaded, or spoke since (then what it
   * shows is newer than the load: unloaded again, say), or it is long past.
   */
  private loadSeen(model: string, nodeID: string, doneAt: number): boolean {
    const n = this.table.get(nodeID);
    if (!n || Date.now() - doneAt > LOADED_GRACE_MS) return true;
    return catalogEntry(n, model)?.state === "ready" || Date.parse(n.lastSeen) >= doneAt;
  }

  private startLoad(nodeID: string, model: string, evictions: string[]): void {
    const load: { node: string; doneAt?: number } = { node: nodeID };
    this.loads.set(model, load);
    const unloads = evictions.length ? ` (unloading ${evictions.join(", ")} first)` : "";
    this.warn(`Loading ${model} on ${nodeID} for the requests waiting for it${unloads}`);
    let loading: Promise<unknown>;
    try {
      loading = this.loader!(nodeID, model);
    } catch (err) {
      loading = Promise.reject(err);
    }
    loading.then(
      () => {
        load.doneAt = Date.now();
        this.release();
      },
      (err: unknown) => {
        this.loads.delete(model);
        this.loadFailed.set(`${nodeID} ${model}`, { at: Date.now(), error: err });
        this.warn(`Loading ${model} on ${nodeID} failed: ${(err as Error)?.message ?? err}`);
        // the requests waiting for it try another node, or hear why
        this.release();
      },
    );
  }

  private recentlyFailed(nodeID: string, model: string, now: number): boolean {
    const f = this.loadFailed.get(`${nodeID} ${model}`);
    if (!f) return false;
    if (now - f.at < LOAD_FAILURE_MS) return true;
    this.loadFailed.delete(`${nodeID} ${model}`);
    return false;
  }

  /** A 503 saying why `model` could not be loaded, when it failed to load on a node (and nothing is left to try). */
  private loadFailure(model: string, exclude: readonly string[]): Error | null {
    const now = Date.now();
    const reasons: string[] = [];
    for (const [key, f] of this.loadFailed) {
      const [node, m] = [key.slice(0, key.indexOf(" ")), key.slice(key.indexOf(" ") + 1)];
      if (m === model && !exclude.includes(node) && now - f.at < LOAD_FAILURE_MS)
        reasons.push(`${node}: ${(f.error as Error)?.message ?? f.error}`);
    }
    for (const f of this.table.loadFailures(model)) {
      if (!exclude.includes(f.node) && !reasons.some((r) => r.startsWith(`${f.node}:`)))
        reasons.push(`${f.node}: ${f.error}`);
    }
    if (reasons.length === 0) return null;
    return apiError(503, `The model '${model}' could not be loaded (${reasons.join("; ")}).`, "model_load_failed", {
      param: "model",
      retryAfter: 5,
    }) as Error;
  }

  /** For the queue: true when `p` got a node (or a final error) and may go. */
  private admit(p: Pending, ahead: number): boolean {
    p.request.waitingAhead = ahead;
    try {
      const r = this.pick(p);
      if (r === "wait") return false;
      p.selection = r;
    } catch (err) {
      p.error = err;
    }
    return true;
  }
}
