/** An idle balancer candidate for strategy tests, with `over` applied. */
import type { Candidate } from "../../lib/strategies";

export function node(nodeID: string, over: Partial<Candidate> = {}): Candidate {
  return {
    nodeID,
    machineName: nodeID,
    capacity: 4,
    active: 0,
    queued: 0,
    cpuUsage: 0,
    gpuUtilization: null,
    vramFreeRatio: null,
    tokensPerSecond: 0,
    latencyMs: null,
    lastSelectedAt: 0,
    ...over,
  };
}

export const req = { model: "m" };
