/** Fixtures for routing tests: an idle balancer candidate, an idle node's heartbeat. */
import type { Heartbeat } from "../../lib/cluster/types";
import type { Candidate } from "../../lib/strategies";

/** An idle balancer candidate for strategy tests, with `over` applied. */

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

/** A heartbeat of an idle node serving `models` (4 slots each), with `over` applied. */
export function heartbeat(nodeID: string, models: string[], over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    nodeID,
    machineName: `host-${nodeID}`,
    engine: "llama.cpp",
    initializing: false,
    models: models.map((id) => ({ id, contextSize: 2048, parallel: 4, sizeBytes: 100, active: 0, queued: 0 })),
    active: 0,
    queued: 0,
    capacity: 4,
    cpu: { usage: 10, cores: 8 },
    memory: { used: 1, total: 4 },
    gpuBackend: false,
    gpus: [],
    tokensPerSecond: 0,
    sentAt: 0,
    ...over,
  };
}
