/** The heartbeat an inference node broadcasts, and the registry's view of a node. */
import type { CatalogEntry } from "../inference/types";

export type { CatalogEntry };

export interface GpuStat {
  name: string;
  /** Percent, or null when the driver does not say (e.g. no nvidia-smi). */
  utilization: number | null;
  vramUsed: number;
  vramTotal: number;
}

export interface NodeModel {
  id: string;
  contextSize: number;
  parallel: number;
  sizeBytes: number;
  /** Requests generating on this model now, and waiting for a free sequence. */
  active: number;
  queued: number;
}

export interface Heartbeat {
  nodeID: string;
  /** The node's last word: it takes nothing new and leaves when what runs has finished. */
  leaving?: boolean;
  machineName: string;
  engine: string;
  initializing: boolean;
  models: NodeModel[];
  active: number;
  queued: number;
  capacity: number;
  cpu: { usage: number; cores: number };
  memory: { used: number; total: number };
  gpuBackend: string | false;
  gpus: GpuStat[];
  /** Decode speed over recent requests. */
  tokensPerSecond: number;
  sentAt: number;
  /** Set for an external OpenAI-compatible runtime the router reaches over HTTP. */
  baseUrl?: string;
  /** An inference node's model files, loaded or not (`models` holds the loaded ones). */
  catalog?: CatalogEntry[];
  /** An inference node's limits on loaded models, and the memory they hold now. */
  modelMemory?: { maxLoaded: number | null; budgetBytes: number | null; usedBytes: number };
}

export type NodeStatus = "online" | "initializing" | "offline";

export interface NodeRecord extends Omit<Heartbeat, "sentAt"> {
  id: string;
  status: NodeStatus;
  registeredAt: string;
  lastSeen: string;
}

/** What an operator set on a node; persisted by the registry. */
export interface NodeSettings {
  displayName: string | null;
  tags: string[];
  notes: string;
  /** No new requests; those in flight finish. */
  draining: boolean;
}

export const DEFAULT_NODE_SETTINGS: NodeSettings = { displayName: null, tags: [], notes: "", draining: false };
