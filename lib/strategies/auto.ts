/**
 * `auto`: the lowest load score from heartbeat metrics. Busy slots dominate;
 * GPU (or CPU) utilisation, used VRAM, and being slower than the fastest node
 * (tokens/s, time to first token) break near-ties; among nodes that score
 * alike, the one this router used least recently wins, so idle nodes share
 * sequential traffic instead of one taking all of it.
 */
import { busyRatio, leastRecent, type Candidate, type RouteRequest, type Strategy } from "./types";

const WEIGHTS = { busy: 1, utilization: 0.3, vram: 0.1, slowness: 0.2, latency: 0.2 };
const TIE = 0.05;

/** Score without the speed terms, which need the other candidates. */
export function loadScore(c: Candidate): number {
  const util = (c.gpuUtilization ?? c.cpuUsage) / 100;
  const vram = c.vramFreeRatio === null ? 0 : 1 - c.vramFreeRatio;
  return WEIGHTS.busy * busyRatio(c) + WEIGHTS.utilization * util + WEIGHTS.vram * vram;
}

/** 0 for the best of `values`, towards 1 for much worse (lower is better unless `higherIsBetter`). */
function relative(value: number | null, values: Array<number | null>, higherIsBetter: boolean): number {
  const known = values.filter((v): v is number => v !== null && v > 0);
  if (value === null || value <= 0 || known.length < 2) return 0;
  const best = higherIsBetter ? Math.max(...known) : Math.min(...known);
  return higherIsBetter ? 1 - value / best : 1 - best / value;
}

export class AutoStrategy implements Strategy {
  readonly name = "auto";

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    const tps = candidates.map((c) => c.tokensPerSecond);
    const lat = candidates.map((c) => c.latencyMs);
    const scored = candidates.map((c) => ({
      c,
      score:
        loadScore(c) +
        WEIGHTS.slowness * relative(c.tokensPerSecond, tps, true) +
        WEIGHTS.latency * relative(c.latencyMs, lat, false),
    }));
    const best = Math.min(...scored.map((s) => s.score));
    return leastRecent(scored.filter((s) => s.score <= best + TIE).map((s) => s.c));
  }
}
