/**
 * What the balancer hands a strategy: one candidate per node serving a model.
 *
 * Rebuilding every candidate for every request cost ~130 µs at 1,000 nodes,
 * ten times the strategy's own choice. So each model's candidates are kept
 * between decisions: rebuilt only when the table's shape changes (a node
 * joins, leaves, changes status, models or settings, or becomes reachable or
 * not: `NodeTable.version`), and one node's candidates refreshed in place
 * when its figures change (a heartbeat, a request routed there or finished:
 * `refresh`). A decision with no excluded and no benched node is then the
 * kept array itself. Pure: this router's counts come in as maps it reads.
 */
import type { NodeTable } from "../cluster/node-table";
import type { NodeRecord } from "../cluster/types";
import type { Candidate } from "../strategies/types";

/** This router's own figures per node. */
export interface RouterCounts {
  /** Requests this router has in flight there. */
  inflight: Map<string, number>;
  /** This router's in-flight count when the node's last heartbeat arrived. */
  atReport: Map<string, number>;
  /** Smoothed time to first token (ms). */
  latency: Map<string, number>;
  /** When this router last sent it a request (ms epoch). */
  last: Map<string, number>;
}

/** Which nodes are benched now (NodeHealth). */
export interface Bench {
  isBenched(nodeID: string, now?: number): boolean;
  /** False only when no node can be benched at `now`: the filtering pass is skipped. */
  anyBenched(now?: number): boolean;
}

/**
 * What a strategy sees of node `n` for `model`, written into `into` when
 * given (a kept candidate) rather than a new object.
 */
export function candidateOf(n: NodeRecord, model: string, counts: RouterCounts, into?: Candidate): Candidate {
  const m = n.models.find((x) => x.id === model);
  // one pass over the GPUs, no arrays
  let utilSum = 0;
  let utilCount = 0;
  let vramTotal = 0;
  let vramUsed = 0;
  for (const g of n.gpus) {
    if (g.utilization !== null) {
      utilSum += g.utilization;
      utilCount++;
    }
    vramTotal += g.vramTotal;
    vramUsed += g.vramUsed;
  }
  const c = into ?? ({} as Candidate);
  c.nodeID = n.id;
  c.machineName = n.machineName;
  c.capacity = m?.parallel ?? n.capacity;
  // ours, known now, plus what other routers had there at the last heartbeat
  c.active = (counts.inflight.get(n.id) ?? 0) + Math.max(0, (m?.active ?? 0) - (counts.atReport.get(n.id) ?? 0));
  c.queued = m?.queued ?? 0;
  c.cpuUsage = n.cpu.usage;
  c.gpuUtilization = utilCount ? utilSum / utilCount : null;
  c.vramFreeRatio = vramTotal > 0 ? 1 - vramUsed / vramTotal : null;
  c.tokensPerSecond = n.tokensPerSecond;
  c.latencyMs = counts.latency.get(n.id) ?? null;
  c.lastSelectedAt = counts.last.get(n.id) ?? 0;
  return c;
}

interface Pool {
  /** The table's version these were built at. */
  version: number;
  /** In the table's (node ID) order. */
  all: Candidate[];
  byNode: Map<string, Candidate>;
}

export class CandidatePools {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly table: () => NodeTable,
    private readonly counts: RouterCounts,
    private readonly bench: Bench,
  ) {}

  /**
   * Candidates for `model`: serving, not excluded, and not benched unless
   * nothing else is left. The array may be the kept one: read it while
   * deciding, never change it.
   */
  eligible(model: string, exclude: readonly string[], now = Date.now()): Candidate[] {
    const all = this.poolOf(model);
    if (exclude.length === 0 && !this.bench.anyBenched(now)) return all;
    const healthy: Candidate[] = [];
    let benched = 0;
    for (const c of all) {
      if (exclude.length > 0 && exclude.includes(c.nodeID)) continue;
      if (this.bench.isBenched(c.nodeID, now)) benched++;
      else healthy.push(c);
    }
    if (healthy.length > 0 || benched === 0) return healthy;
    // benched nodes only when nothing else is left
    return all.filter((c) => !exclude.includes(c.nodeID));
  }

  /** Node `nodeID`'s figures changed: its kept candidates are filled again from the table and the counts. */
  refresh(nodeID: string): void {
    if (this.pools.size === 0) return;
    const n = this.table().get(nodeID);
    if (!n) return;
    for (const [model, pool] of this.pools) {
      const c = pool.byNode.get(nodeID);
      if (c) candidateOf(n, model, this.counts, c);
    }
  }

  /** The kept candidates of `model`, rebuilt when the table changed shape since. */
  private poolOf(model: string): Candidate[] {
    const table = this.table();
    const pool = this.pools.get(model);
    if (pool && pool.version === table.version) return pool.all;
    const all: Candidate[] = [];
    const byNode = new Map<string, Candidate>();
    for (const n of table.list()) {
      if (!table.serves(n, model)) continue;
      const c = candidateOf(n, model, this.counts, pool?.byNode.get(n.id));
      all.push(c);
      byNode.set(n.id, c);
    }
    // kept only for models some node serves: a client's made-up model names take no room
    if (all.length > 0) this.pools.set(model, { version: table.version, all, byNode });
    else this.pools.delete(model);
    return all;
  }
}
