/** Strategy registry: adding a strategy is adding a file and a line here. */
import { AutoStrategy } from "./auto";
import { RoundRobinStrategy } from "./round-robin";
import { LeastBusyStrategy } from "./least-busy";
import { LatencyStrategy } from "./latency";
import { RandomStrategy } from "./random";
import { AffinityStrategy } from "./affinity";
import type { Strategy } from "./types";

const STRATEGIES: Record<string, () => Strategy> = {
  auto: () => new AutoStrategy(),
  round_robin: () => new RoundRobinStrategy(),
  least_busy: () => new LeastBusyStrategy(),
  latency: () => new LatencyStrategy(),
  random: () => new RandomStrategy(),
  affinity: () => new AffinityStrategy(),
};

export const STRATEGY_NAMES = Object.keys(STRATEGIES);

export function createStrategy(name: string): Strategy {
  const make = STRATEGIES[name];
  if (!make) {
    throw new Error(`Unknown load balancer mode "${name}"; known: ${STRATEGY_NAMES.join(", ")}`);
  }
  return make();
}

export type { Candidate, CandidateScore, Explanation, RouteRequest, Strategy } from "./types";
