/**
 * `auto`: the lowest load score from heartbeat metrics. Busy slots dominate;
 * GPU (or CPU) utilisation, used VRAM, and being slower than the fastest node
 * (tokens/s, time to first token) break near-ties; among nodes that score
 * alike, the one this router used least recently wins, so idle nodes share
 * sequential traffic instead of one taking all of it.
 */
import {
  busyRatio,
  freeSlots,
  type Candidate,
  type CandidateScore,
  type Explanation,
  type RouteRequest,
  type Strategy,
} from "./types";

const WEIGHTS = { busy: 1, utilization: 0.3, vram: 0.1, slowness: 0.2, latency: 0.2 };
const TIE = 0.05;

/** Score without the speed terms, which need the other candidates. */
export function loadScore(c: Candidate): number {
  const util = (c.gpuUtilization ?? c.cpuUsage) / 100;
  const vram = c.vramFreeRatio === null ? 0 : 1 - c.vramFreeRatio;
  return WEIGHTS.busy * busyRatio(c) + WEIGHTS.utilization * util + WEIGHTS.vram * vram;
}

/** The best known value (> 0) and how many are known: a node's speed is judged against these. */
function bestOf(
  pool: Candidate[],
  value: (c: Candidate) => number | null,
  higherIsBetter: boolean,
): { best: number; known: number } {
  let best = higherIsBetter ? -Infinity : Infinity;
  let known = 0;
  for (const c of pool) {
    const v = value(c);
    if (v === null || !(v > 0)) continue;
    known++;
    if (higherIsBetter ? v > best : v < best) best = v;
  }
  return { best, known };
}

/** 0 for the best value, towards 1 for much worse (lower is better unless `higherIsBetter`). */
function relative(value: number | null, ref: { best: number; known: number }, higherIsBetter: boolean): number {
  return relativeTo(value, ref.best, ref.known, higherIsBetter);
}

function relativeTo(value: number | null, best: number, known: number, higherIsBetter: boolean): number {
  if (value === null || value <= 0 || known < 2) return 0;
  return higherIsBetter ? 1 - value / best : 1 - best / value;
}

export interface LoadTerms {
  c: Candidate;
  /** loadScore plus the speed terms. */
  score: number;
  /** 0 for the most tokens/s among `pool`, towards 1 for much slower. */
  slowness: number;
  /** 0 for the lowest time to first token among `pool`, towards 1 for much slower. */
  latency: number;
}

/** Each node's full load score, its speed terms relative to the others in `pool` (one pass for the bests: O(n)). */
export function loadScores(pool: Candidate[]): LoadTerms[] {
  const tps = bestOf(pool, (c) => c.tokensPerSecond, true);
  const lat = bestOf(pool, (c) => c.latencyMs, false);
  return pool.map((c) => {
    const slowness = relative(c.tokensPerSecond, tps, true);
    const latency = relative(c.latencyMs, lat, false);
    return { c, slowness, latency, score: loadScore(c) + WEIGHTS.slowness * slowness + WEIGHTS.latency * latency };
  });
}

/**
 * Scratch space for `select`, reused across decisions: a decision over 1,000
 * nodes allocates nothing, so it never brings on a scavenge (the p99 of a
 * decision was mostly garbage collection; bench/RESULTS.md, "Scale").
 */
let times = new Float64Array(1024);
let scores = new Float64Array(1024);
let inPool = new Uint8Array(1024);

function scratch(n: number): void {
  if (times.length >= n) return;
  const size = Math.max(n, times.length * 2);
  times = new Float64Array(size);
  scores = new Float64Array(size);
  inPool = new Uint8Array(size);
}

/**
 * Marks in `inPool` the nodes the load score decides among (what `stage`
 * returns as its pool, without building it): every node measured, those
 * whose expected answer is within 10 % of the soonest, with a free slot if
 * any has one; otherwise the nodes with a free slot, or all when none has.
 */
function markPool(cs: Candidate[], waitingAhead: number): void {
  const n = cs.length;
  let allMeasured = true;
  for (let i = 0; i < n; i++) {
    if (cs[i].latencyMs === null) {
      allMeasured = false;
      break;
    }
  }
  let room = 0;
  if (!allMeasured) {
    for (let i = 0; i < n; i++) {
      const free = busyRatio(cs[i]) < 1;
      inPool[i] = free ? 1 : 0;
      if (free) room++;
    }
    if (room === 0) inPool.fill(1, 0, n);
    return;
  }
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t = expectedCompletionMs(cs[i], waitingAhead);
    times[i] = t;
    if (t < best) best = t;
  }
  const limit = best * COMPLETION_TIE;
  for (let i = 0; i < n; i++) {
    // 2 = near the soonest with a free slot, 1 = near the soonest
    inPool[i] = times[i] > limit ? 0 : busyRatio(cs[i]) < 1 ? 2 : 1;
    if (inPool[i] === 2) room++;
  }
  if (room > 0) for (let i = 0; i < n; i++) inPool[i] = inPool[i] === 2 ? 1 : 0;
}

/**
 * The same choice as ranking `loadScores(pool)` over the marked nodes: the
 * lowest score, among near-equals the least recently used, the first of
 * those on a tie. Three passes; nothing allocated.
 */
function lowestLoadMarked(cs: Candidate[]): Candidate {
  const n = cs.length;
  let bestTps = -Infinity;
  let knownTps = 0;
  let bestLat = Infinity;
  let knownLat = 0;
  for (let i = 0; i < n; i++) {
    if (!inPool[i]) continue;
    const tps = cs[i].tokensPerSecond;
    if (tps !== null && tps > 0) {
      knownTps++;
      if (tps > bestTps) bestTps = tps;
    }
    const lat = cs[i].latencyMs;
    if (lat !== null && lat > 0) {
      knownLat++;
      if (lat < bestLat) bestLat = lat;
    }
  }
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    if (!inPool[i]) continue;
    const c = cs[i];
    const s =
      loadScore(c) +
      WEIGHTS.slowness * relativeTo(c.tokensPerSecond, bestTps, knownTps, true) +
      WEIGHTS.latency * relativeTo(c.latencyMs, bestLat, knownLat, false);
    scores[i] = s;
    if (s < best) best = s;
  }
  let chosen: Candidate | undefined;
  for (let i = 0; i < n; i++) {
    if (inPool[i] && scores[i] <= best + TIE && (!chosen || cs[i].lastSelectedAt < chosen.lastSelectedAt)) {
      chosen = cs[i];
    }
  }
  return chosen!;
}

/**
 * Expected time until a request sent to `c` now would be answered: waiting for
 * a slot (when all are busy, about one service time per `capacity` requests
 * ahead, counting those waiting at the router) plus one service time (the
 * smoothed answer time this router measured).
 */
export function expectedCompletionMs(c: Candidate, waitingAhead = 0): number {
  const service = c.latencyMs ?? 0;
  // a free slot is free now; for a full node, those already waiting (for such slots) go first
  const ahead = busyRatio(c) < 1 ? 0 : c.active + c.queued - c.capacity + 1 + waitingAhead;
  const wait = ahead > 0 ? (service * ahead) / Math.max(c.capacity, 1) : 0;
  return wait + service;
}

const COMPLETION_TIE = 1.1;

/** Which nodes the load score decides among, and on what grounds. */
interface Stage {
  /** Every node measured: expected completion per node; otherwise null. */
  times: Map<Candidate, number> | null;
  pool: Candidate[];
}

export class AutoStrategy implements Strategy {
  readonly name = "auto";
  /** Sees full nodes: waiting for a fast node can beat a free slot on a slow one. */
  readonly seesFullNodes = true;

  select(candidates: Candidate[], request?: RouteRequest): Candidate {
    scratch(candidates.length);
    markPool(candidates, request?.waitingAhead ?? 0);
    return lowestLoadMarked(candidates);
  }

  explain(candidates: Candidate[], request?: RouteRequest): Explanation {
    const { times, pool } = this.stage(candidates, request);
    const load = new Map(loadScores(pool).map((t) => [t.c, t]));
    const rule = times
      ? "every node measured: the soonest expected answer (slot wait + service time); near-equals (within 10%) by load score, then least recently used"
      : "not every node measured yet: the lowest load score among nodes with a free slot, then least recently used";
    const scores: CandidateScore[] = candidates.map((c) => {
      const t = load.get(c);
      const expected = times?.get(c) ?? null;
      return {
        nodeID: c.nodeID,
        score: times ? expected : (t?.score ?? null),
        factors: {
          free_slots: freeSlots(c),
          busy_ratio: busyRatio(c),
          expected_wait_ms: expected === null ? null : expected - (c.latencyMs ?? 0),
          service_ms: c.latencyMs,
          expected_ms: expected,
          gpu_util: c.gpuUtilization,
          cpu_usage: c.cpuUsage,
          vram_used_ratio: c.vramFreeRatio === null ? null : 1 - c.vramFreeRatio,
          tokens_per_second: c.tokensPerSecond,
          load_score: t?.score ?? null,
          slowness: t?.slowness ?? null,
          considered: t !== undefined,
        },
      };
    });
    return { strategy: this.name, rule, picked: this.select(candidates, request).nodeID, candidates: scores };
  }

  private stage(candidates: Candidate[], request?: RouteRequest): Stage {
    // once every node has been measured: the soonest expected answer
    if (candidates.every((c) => c.latencyMs !== null)) {
      const times = new Map(candidates.map((c) => [c, expectedCompletionMs(c, request?.waitingAhead ?? 0)]));
      const best = Math.min(...times.values());
      const near = candidates.filter((c) => times.get(c)! <= best * COMPLETION_TIE);
      const withRoom = near.filter((c) => busyRatio(c) < 1);
      return { times, pool: withRoom.length ? withRoom : near };
    }
    // before that: the lowest load among nodes with a free slot
    const withRoom = candidates.filter((c) => busyRatio(c) < 1);
    return { times: null, pool: withRoom.length ? withRoom : candidates };
  }
}
