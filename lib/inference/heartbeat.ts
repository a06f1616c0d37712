/**
 * An inference node's heartbeat (services/inference.service.ts broadcasts it
 * as `inference.heartbeat`, and answers `inference.status` with it): its
 * loaded models with their load, the totals, machine metrics, every model on
 * disk and the memory the loaded ones hold. Pure over what the engine, the
 * model manager and the runner report.
 */
import type { CatalogEntry, Heartbeat } from "../cluster/types";
import type { MachineStats } from "../metrics/machine";
import type { EngineModel, ModelLoad } from "./types";

export interface ModelLimits {
  maxLoaded: number | null;
  budgetBytes: number | null;
}

export interface HeartbeatInput {
  nodeID: string;
  machineName: string;
  /** LLM_NODE_GPU: the backend asked for (false: CPU only). */
  gpuBackend: string | false;
  /** The engine's kind; null while it is being created ("loading"). */
  engineKind: string | null;
  /** No runner yet: the node is still loading its models. */
  initializing: boolean;
  /** The engine's loaded models, and their load (empty before it exists). */
  models: EngineModel[];
  load: ModelLoad[];
  machine: MachineStats;
  tokensPerSecond: number;
  /** The model manager's files on disk, its limits (null before it exists) and the memory the loaded ones hold. */
  catalog: CatalogEntry[];
  limits: ModelLimits | null;
  usedBytes: number;
  sentAt: number;
}

export function buildHeartbeat(i: HeartbeatInput): Heartbeat {
  return {
    nodeID: i.nodeID,
    machineName: i.machineName,
    engine: i.engineKind ?? "loading",
    initializing: i.initializing,
    models: i.models.map((m) => {
      const l = i.load.find((x) => x.id === m.id);
      return {
        id: m.id,
        contextSize: m.contextSize,
        parallel: m.parallel,
        sizeBytes: m.sizeBytes,
        active: l?.active ?? 0,
        queued: l?.queued ?? 0,
      };
    }),
    active: i.load.reduce((a, l) => a + l.active, 0),
    queued: i.load.reduce((a, l) => a + l.queued, 0),
    capacity: i.load.reduce((a, l) => a + l.capacity, 0),
    ...i.machine,
    gpuBackend: i.gpuBackend,
    tokensPerSecond: i.tokensPerSecond,
    catalog: i.catalog,
    modelMemory: {
      ...(i.limits ?? { maxLoaded: null, budgetBytes: null }),
      usedBytes: i.usedBytes,
    },
    sentAt: i.sentAt,
  };
}
