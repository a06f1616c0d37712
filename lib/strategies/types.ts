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
 * Among `cs` (only those `eligible` says, when given), the one with the
 * lowest `key`, the least recently used of equals, the first of those on a
 * tie: `leastRecent` of the minimum, in two passes and with no arrays.
 */
export function lowestThenLeastRecent(
  cs: Candidate[],
  key: (c: Candidate) => number,
  eligible?: (c: Candidate) => boolean,
): Candidate {
  let best = Infinity;
  for (const c of cs) {
    if (eligible && !eligible(c)) continue;
    const k = key(c);
    if (k < best) best = k;
  }
  let chosen: Candidate | undefined;
  for (const c of cs) {
    if ((eligible && !eligible(c)) || key(c) !== best) continue;
    if (!chosen || c.lastSelectedAt < chosen.lastSelectedAt) chosen = c;
  }
  return chosen ?? cs[0];
}

/** Free slots on a node for this model (never negative). */
export function freeSlots(c: Candidate): number {
  return Math.max(c.capacity - c.active - c.queued, 0);
}

/** The figures a strategy compared for one candidate. */
export interface CandidateScore {
  nodeID: string;
  /** What the strategy ranks by (lower wins unless the rule says otherwise); null when it has no single number. */
  score: number | null;
  /** The inputs and terms behind it, by name (ms, ratios 0..1, percent, tokens/s). */
  factors: Record<string, number | string | boolean | null>;
}

/** Why a strategy would pick what it picks, for these candidates, now. */
export interface Explanation {
  strategy: string;
  /** How it chooses, in one sentence. */
  rule: string;
  /** The node it would pick now; null when chance decides (`random`). */
  picked: string | null;
  candidates: CandidateScore[];
}

/**
 * A balancing strategy: pure, given health-filtered candidates (never empty).
 * Strategies see only nodes with a free slot, unless they set `seesFullNodes`:
 * then they see all, and picking a full node means "wait for a slot there".
 * `explain` says what `select` would do and why, changing nothing (no
 * round-robin turn taken, no conversation remembered).
 */
export interface Strategy {
  readonly name: string;
  readonly seesFullNodes?: boolean;
  select(candidates: Candidate[], request: RouteRequest): Candidate;
  explain(candidates: Candidate[], request: RouteRequest): Explanation;
}
