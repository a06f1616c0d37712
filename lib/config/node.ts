/**
 * The inference node's configuration and the command line's, read through
 * the spec by ./readers.ts (`read`), like every other concern there.
 */
import { read } from "./readers";
import { ENV, type GpuSetting } from "./spec";

// ---- inference node -------------------------------------------------------------

export type { GpuSetting };

export interface NodeConfig {
  modelsDir: string;
  name: string;
  parallel: number;
  /** lib/inference/coalesce.ts */
  streamBatch: { windowMs: number; maxChunks: number };
  threads: number;
  contextSize: number;
  gpu: GpuSetting;
  heartbeatSecs: number;
  demoModel: boolean;
  engine: "llama" | "instant";
  instantMsPerToken: number;
  maxLoadedModels: number | null;
  memoryBudget: number | null;
  modelIdleSecs: number | null;
  pinnedModels: string[];
  loadAtStart: "fit" | "pinned";
}

export function nodeConfig(): NodeConfig {
  return {
    modelsDir: read(ENV.LLM_NODE_MODELS_DIR),
    name: read(ENV.LLM_NODE_NAME),
    parallel: read(ENV.LLM_NODE_PARALLEL),
    streamBatch: { windowMs: read(ENV.LLM_NODE_STREAM_BATCH_MS), maxChunks: read(ENV.LLM_NODE_STREAM_BATCH_CHUNKS) },
    threads: read(ENV.LLM_NODE_THREADS),
    contextSize: read(ENV.LLM_NODE_CONTEXT_SIZE),
    gpu: read(ENV.LLM_NODE_GPU),
    heartbeatSecs: read(ENV.LLM_NODE_HEARTBEAT_SECS),
    demoModel: read(ENV.LLM_NODE_DEMO_MODEL),
    engine: read(ENV.LLM_NODE_ENGINE),
    instantMsPerToken: read(ENV.LLM_NODE_INSTANT_MS_PER_TOKEN),
    maxLoadedModels: read(ENV.LLM_NODE_MAX_LOADED_MODELS) ?? null,
    memoryBudget: read(ENV.LLM_NODE_MEMORY_BUDGET) ?? null,
    modelIdleSecs: read(ENV.LLM_NODE_MODEL_IDLE_SECS) ?? null,
    pinnedModels: read(ENV.LLM_NODE_PINNED_MODELS),
    loadAtStart: read(ENV.LLM_NODE_LOAD_AT_START),
  };
}

// ---- command line -----------------------------------------------------------------

export interface CliConfig {
  /** LLM_ROUTER_URL, without a trailing slash. */
  url: string;
  token: string | undefined;
  user: string;
  password: string | undefined;
}

export function cliConfig(): CliConfig {
  return {
    url: read(ENV.LLM_ROUTER_URL),
    token: read(ENV.LLM_ROUTER_TOKEN),
    user: read(ENV.LLM_ROUTER_USER),
    password: read(ENV.LLM_ROUTER_PASSWORD),
  };
}
