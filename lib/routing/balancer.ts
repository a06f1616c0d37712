/**
 * The balancer of one router process: picks the node for a request with the
 * strategy that LLM_ROUTER_LOAD_BALANCER_MODE names, counts this router's
 * in-flight requests per node, benches failing nodes, smooths each node's
 * time to first token, and keeps the wait queue for requests that find every
 * node with their model full or still loading. It lives in the router's core
 * (lib/core/router-core.ts): the api calls it directly, services/balancer.service.ts
 * exposes it as actions.
 */
import { NodeHealth } from "../cluster/node-health";
import type { NodeTable } from "../cluster/node-table";
import { apiError, modelNotFound } from "../openai/errors";
import type { Runtime } from "../runtimes/openai-upstream";
import { createStrategy, type Candidate, type RouteRequest, type Strategy } from "../strategies";
import { busyRatio } from "../strategies/types";
import { CandidatePools } from "./candidates";
import { explainRoute } from "./explain";
import { WaitQueue } from "./wait-queue";

export interface Selection {
  nodeID: string;
  machineName: string;
  /** Set when the node is an external runtime reached over HTTP. */
  runtime?: Runtime;
}

export type Outcome = "ok" | "node_failed" | "client_error" | "other";

export interface SelectParams {
  model: string;
  user?: string;
  affinityKey?: string;
  /** A node to take while it has a free slot, whatever the strategy says (it holds the conversation's cache). */
  preferNode?: string;
  exclude?: string[];
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
    const { model, user, affinityKey, preferNode, exclude = [] } = params;
    const pending: Pending = { request: { model, user, affinityKey }, exclude, preferNode };
    // first come, first served: nobody passes a request already waiting for the same model
    const queuedAhead = this.queue.length > 0 && this.queue.count((p) => p.request.model === model) > 0;
    const now = queuedAhead ? "wait" : this.pick(pending);
    if (now !== "wait") return now;
    await this.queue.wait(pending);
    if (pending.error) throw pending.error;
    return pending.selection!;
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
      const loading = this.table.initializing(model).filter((n) => !p.exclude.includes(n.id));
      if (loading.length > 0) return "wait";
      if (!this.table.knows(model)) throw modelNotFound(model);
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
    return { nodeID: chosen.nodeID, machineName: chosen.machineName, runtime: this.runtimeOf(chosen.nodeID) };
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
