/** What the registry records for an external runtime after a successful health check. */
import type { Heartbeat } from "../cluster/types";

export function externalHeartbeat(
  id: string,
  name: string,
  baseUrl: string,
  models: string[],
  parallel: number,
): Heartbeat {
  return {
    nodeID: id,
    machineName: name,
    engine: "external (OpenAI-compatible)",
    initializing: false,
    models: models.map((m) => ({ id: m, contextSize: 0, parallel, sizeBytes: 0, active: 0, queued: 0 })),
    active: 0,
    queued: 0,
    capacity: parallel * Math.max(models.length, 1),
    cpu: { usage: 0, cores: 0 },
    memory: { used: 0, total: 0 },
    gpuBackend: false,
    gpus: [],
    tokensPerSecond: 0,
    sentAt: Date.now(),
    baseUrl,
  };
}
