/** What a strategy sees of a node that has the requested model and room to take it. */
export interface Candidate {
  nodeID: string;
  machineName: string;
  /** Parallel slots for this model on that node. */
  capacity: number;
  /** Requests in flight there: the larger of this router's count and the node's last report. */
  active: number;
  /** Requests waiting on the node for a free slot. */
  queued: number;
  /** CPU use, percent. */
  cpuUsage: number;
  /** Mean GPU utilisation in percent, or null without GPU telemetry. */
  gpuUtilization: number | null;
  /** Free share of VRAM (0..1), or null without GPUs. */
  vramFreeRatio: number | null;
  tokensPerSecond: number;
  /** Smoothed time to first token seen by this router (ms), or null before the first answer. */
  latencyMs: number | null;
  /** When this router last sent it a request (ms epoch; 0 = never). */
  lastSelectedAt: number;
}

export interface RouteRequest {
  model: string;
  user?: string;
  /** Same key = same conversation (its `user`, or a hash of its opening messages). */
  affinityKey?: string;
  /** Requests waiting at this router ahead of this one. */
  waitingAhead?: number;
}

/** Share of a node's slots in use, counting requests queued on it. */
export function busyRatio(c: Candidate): number {
  return (c.active + c.queued) / Math.max(c.capacity, 1);
}

/** Among `cs`, the one this router used least recently. */
export function leastRecent(cs: Candidate[]): Candidate {
  return cs.reduce((a, b) => (b.lastSelectedAt < a.lastSelectedAt ? b : a));
}

/**
 * A balancing strategy: pure, given health-filtered candidates (never empty).
 * Strategies see only nodes with a free slot, unless they set `seesFullNodes`:
 * then they see all, and picking a full node means "wait for a slot there".
 */
export interface Strategy {
  readonly name: string;
  readonly seesFullNodes?: boolean;
  select(candidates: Candidate[], request: RouteRequest): Candidate;
}
