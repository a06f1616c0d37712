/**
 * `auto`: the lowest load score from heartbeat metrics. Busy slots dominate;
 * GPU (or CPU) utilisation, used VRAM, and being slower than the fastest node
 * (tokens/s, time to first token) break near-ties; among nodes that score
 * alike, the one this router used least recently wins, so idle nodes share
 * sequential traffic instead of one taking all of it. A conversation's next
 * turn goes back to the node that served it last (its KV cache holds the
 * conversation's beginning: only the new tokens are evaluated) while that node
 * has a free slot and is nearly as good a choice as the load's: its expected
 * answer at most twice the chosen node's once both are measured (the cache
 * saves the conversation's whole prompt; a node four times slower still loses
 * it), its load score within 0.5 before (two of four slots).
 */
import { ConversationOwners } from "./owners";
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

/** The weights as plain numbers, for the per-node loop of `select`. */
const W_BUSY = WEIGHTS.busy;
const W_UTIL = WEIGHTS.utilization;
const W_VRAM = WEIGHTS.vram;
const W_SLOW = WEIGHTS.slowness;
const W_LAT = WEIGHTS.latency;

/** `mark` bits: the node has a free slot; its expected answer is near the soonest. */
const FREE = 1;
const NEAR = 2;

/**
 * Scratch space for `select`, reused across decisions: a decision over 1,000
 * nodes allocates nothing, so it never brings on a scavenge (the p99 of a
 * decision was mostly garbage collection; bench/RESULTS.md, "Scale"). One
 * pass reads each candidate's fields once into these (reading the candidates
 * is the dearest part: their numbers are boxed), and the passes after it
 * read these arrays. Null tokens/s or latency is stored as 0: `relativeTo`
 * treats both alike, and neither counts as known.
 */
const scratch = {
  load: new Float64Array(1024),
  tps: new Float64Array(1024),
  lat: new Float64Array(1024),
  times: new Float64Array(1024),
  scores: new Float64Array(1024),
  mark: new Uint8Array(1024),
};

function ensureScratch(n: number): void {
  if (scratch.load.length >= n) return;
  const size = Math.max(n, scratch.load.length * 2);
  scratch.load = new Float64Array(size);
  scratch.tps = new Float64Array(size);
  scratch.lat = new Float64Array(size);
  scratch.times = new Float64Array(size);
  scratch.scores = new Float64Array(size);
  scratch.mark = new Uint8Array(size);
}

/** Node `i`'s load score with the speed terms, from the scratch arrays: `loadScore` plus `relativeTo` twice, term for term. */
function fullScore(i: number, bestTps: number, tpsKnown: boolean, bestLat: number, latKnown: boolean): number {
  const tv = scratch.tps[i];
  const lv = scratch.lat[i];
  return (
    scratch.load[i] +
    W_SLOW * (tv <= 0 || !tpsKnown ? 0 : 1 - tv / bestTps) +
    W_LAT * (lv <= 0 || !latKnown ? 0 : 1 - bestLat / lv)
  );
}

/**
 * What `select` decides, as ranking `loadScores(stage(...).pool)` would: the
 * lowest score in the pool, among near-equals (within TIE) the least recently
 * used, the first of those on a tie. The pool: once every node is measured,
 * those whose expected answer is within 10 % of the soonest, with a free slot
 * if any of them has one; before that, the nodes with a free slot, or all when
 * none has. One pass over the candidates, then up to four over the scratch
 * arrays; nothing allocated.
 */
function decide(cs: Candidate[], waitingAhead: number): Candidate {
  const n = cs.length;
  // locals, not the module's bindings: a binding that can change is loaded and checked again at every use
  const { load, tps, lat, times, scores, mark } = scratch;

  // 1. the one pass over the candidates
  let allMeasured = true;
  let room = 0;
  let soonest = Infinity;
  // among the nodes with a free slot, the pool unless every node is measured or none has one (step 3
  // does it over the pool otherwise): the best tokens/s and latency, how many known, the lowest load
  let bestTps = -Infinity;
  let knownTps = 0;
  let bestLat = Infinity;
  let knownLat = 0;
  let lowest = -1;
  let lowestLoad = Infinity;
  for (let i = 0; i < n; i++) {
    const c = cs[i];
    const active = c.active;
    const queued = c.queued;
    const capacity = c.capacity;
    const slots = Math.max(capacity, 1);
    const busy = (active + queued) / slots; // busyRatio
    const free = busy < 1;
    const vramFree = c.vramFreeRatio;
    // loadScore, term for term
    const ld =
      W_BUSY * busy +
      W_UTIL * ((c.gpuUtilization ?? c.cpuUsage) / 100) +
      W_VRAM * (vramFree === null ? 0 : 1 - vramFree);
    load[i] = ld;
    const t = c.tokensPerSecond;
    const tv = t === null ? 0 : t;
    tps[i] = tv;
    const l = c.latencyMs;
    const lv = l === null ? 0 : l;
    lat[i] = lv;
    mark[i] = free ? FREE : 0;
    if (free) {
      room++;
      if (tv > 0) {
        knownTps++;
        if (tv > bestTps) bestTps = tv;
      }
      if (lv > 0) {
        knownLat++;
        if (lv < bestLat) bestLat = lv;
      }
      if (ld < lowestLoad) {
        lowestLoad = ld;
        lowest = i;
      }
    }
    if (l === null) allMeasured = false;
    else if (allMeasured) {
      // expectedCompletionMs, term for term (needed only if every node is measured)
      const service = l ?? 0;
      const ahead = free ? 0 : active + queued - capacity + 1 + waitingAhead;
      const time = (ahead > 0 ? (service * ahead) / slots : 0) + service;
      times[i] = time;
      if (time < soonest) soonest = time;
    }
  }

  // 2. the pool: the nodes whose mark has every bit of `want`
  let want = room > 0 ? FREE : 0;
  if (allMeasured) {
    const limit = soonest * COMPLETION_TIE;
    let nearFree = 0;
    for (let i = 0; i < n; i++) {
      if (times[i] > limit) continue;
      mark[i] |= NEAR;
      if (mark[i] === (NEAR | FREE)) nearFree++;
    }
    want = nearFree > 0 ? NEAR | FREE : NEAR;
  }

  // 3. the same over the pool, where it is not the nodes with a free slot
  if (want !== FREE) {
    bestTps = -Infinity;
    knownTps = 0;
    bestLat = Infinity;
    knownLat = 0;
    lowest = -1;
    lowestLoad = Infinity;
    for (let i = 0; i < n; i++) {
      if ((mark[i] & want) !== want) continue;
      const tv = tps[i];
      if (tv > 0) {
        knownTps++;
        if (tv > bestTps) bestTps = tv;
      }
      const lv = lat[i];
      if (lv > 0) {
        knownLat++;
        if (lv < bestLat) bestLat = lv;
      }
      if (load[i] < lowestLoad) {
        lowestLoad = load[i];
        lowest = i;
      }
    }
  }

  // 4. the scores, NaN where not computed (never within TIE of the best): outside the pool, and where
  // the load alone is over `cut`, the full score of the lowest-load node plus TIE. The speed terms
  // are never negative (no node in the pool beats the pool's best) and adding them never rounds
  // below the load, so such a node's score is over the best plus TIE; skipping it saves its two
  // divisions. A NaN cut (the lowest-load node's score NaN) skips nothing.
  const tpsKnown = knownTps >= 2;
  const latKnown = knownLat >= 2;
  const cut = lowest < 0 ? NaN : fullScore(lowest, bestTps, tpsKnown, bestLat, latKnown) + TIE;
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    if ((mark[i] & want) !== want || load[i] > cut) {
      scores[i] = NaN;
      continue;
    }
    const s = fullScore(i, bestTps, tpsKnown, bestLat, latKnown);
    scores[i] = s;
    if (s < best) best = s;
  }

  // 5. among the scores within TIE of the best, the least recently used, the first on a tie
  const within = best + TIE;
  let chosen = -1;
  let chosenLast = 0;
  for (let i = 0; i < n; i++) {
    if (scores[i] <= within && (chosen < 0 || cs[i].lastSelectedAt < chosenLast)) {
      chosen = i;
      chosenLast = cs[i].lastSelectedAt;
    }
  }
  // every score NaN (figures a node should never report): the first candidate rather than none
  return cs[chosen < 0 ? 0 : chosen];
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

/** How many times later the conversation's own node may be expected to answer than the load's choice, and keep it. */
const OWNER_COMPLETION_TIE = 2;
/** Before both are measured: how much higher its load score may be. */
const OWNER_LOAD_TIE = 0.5;

/** Whether the conversation's node, with a free slot, is nearly as good as `chosen`. */
function ownerIsNearlyAsGood(owner: Candidate, chosen: Candidate, waitingAhead: number): boolean {
  if (owner.latencyMs !== null && chosen.latencyMs !== null) {
    return (
      expectedCompletionMs(owner, waitingAhead) <= expectedCompletionMs(chosen, waitingAhead) * OWNER_COMPLETION_TIE
    );
  }
  return loadScore(owner) <= loadScore(chosen) + OWNER_LOAD_TIE;
}

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

  private readonly owners = new ConversationOwners();

  select(candidates: Candidate[], request?: RouteRequest): Candidate {
    const key = request?.affinityKey;
    const picked = this.withOwner(candidates, request);
    if (key !== undefined) this.owners.remember(key, picked.nodeID);
    return picked;
  }

  /** The decision by load alone, remembering nothing (what `affinity` falls back on). */
  byLoad(candidates: Candidate[], request?: RouteRequest): Candidate {
    ensureScratch(candidates.length);
    return decide(candidates, request?.waitingAhead ?? 0);
  }

  /** The load's choice, or the conversation's node when it has room and is nearly as good. */
  private withOwner(candidates: Candidate[], request?: RouteRequest): Candidate {
    const chosen = this.byLoad(candidates, request);
    const owner = this.owners.withRoom(candidates, request?.affinityKey);
    return owner && owner !== chosen && ownerIsNearlyAsGood(owner, chosen, request?.waitingAhead ?? 0) ? owner : chosen;
  }

  explain(candidates: Candidate[], request?: RouteRequest): Explanation {
    const { times, pool } = this.stage(candidates, request);
    const load = new Map(loadScores(pool).map((t) => [t.c, t]));
    const byLoad = this.byLoad(candidates, request);
    const picked = this.withOwner(candidates, request);
    const ownerID = this.owners.ownerOf(request?.affinityKey);
    const rule =
      picked !== byLoad
        ? "the conversation's node has a free slot and is nearly as good (its cache holds the conversation): it keeps it"
        : times
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
          owns_conversation: c.nodeID === ownerID,
        },
      };
    });
    return { strategy: this.name, rule, picked: picked.nodeID, candidates: scores };
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
