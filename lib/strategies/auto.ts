/**
 * `auto`: the lowest load score from heartbeat metrics. Busy slots dominate;
 * GPU (or CPU) utilisation and used VRAM break near-ties; among nodes that
 * score alike, the one this router used least recently wins, so idle nodes
 * share sequential traffic instead of one taking all of it.
 */
import type { Candidate, RouteRequest, Strategy } from "./types";

const WEIGHTS = { busy: 1, utilization: 0.3, vram: 0.1 };
const TIE = 0.05;

export function loadScore(c: Candidate): number {
  const busy = (c.active + c.queued) / Math.max(c.capacity, 1);
  const util = (c.gpuUtilization ?? c.cpuUsage) / 100;
  const vram = c.vramFreeRatio === null ? 0 : 1 - c.vramFreeRatio;
  return WEIGHTS.busy * busy + WEIGHTS.utilization * util + WEIGHTS.vram * vram;
}

export class AutoStrategy implements Strategy {
  readonly name = "auto";

  select(candidates: Candidate[], _request?: RouteRequest): Candidate {
    const scored = candidates.map((c) => ({ c, score: loadScore(c) }));
    const best = Math.min(...scored.map((s) => s.score));
    return scored
      .filter((s) => s.score <= best + TIE)
      .reduce((a, b) => (b.c.lastSelectedAt < a.c.lastSelectedAt ? b : a)).c;
  }
}
