/**
 * An inference node's start (services/inference.service.ts `started`): its
 * engine, its model manager's options from the node's configuration, and
 * what it logs about the models it found.
 */
import type { NodeConfig } from "../config";
import { InstantEngine } from "./instant-engine";
import { LlamaEngine } from "./llama-engine";
import type { ManagerOptions } from "./model-manager";
import type { Engine } from "./types";

/** node-llama-cpp, or the instant engine of benches and tests (LLM_NODE_ENGINE=instant). */
export async function createEngine(cfg: NodeConfig, warn: (msg: string) => void): Promise<Engine> {
  return cfg.engine === "instant"
    ? new InstantEngine(cfg.parallel, cfg.instantMsPerToken)
    : await LlamaEngine.create({ ...cfg, log: warn });
}

/** The model manager's options: the node's limits, idle time, pinned models and start policy. */
export function managerOptions(cfg: NodeConfig, hooks: Pick<ManagerOptions, "log" | "onChange">): ManagerOptions {
  return {
    modelsDir: cfg.modelsDir,
    maxLoaded: cfg.maxLoadedModels,
    budgetBytes: cfg.memoryBudget,
    idleMs: cfg.modelIdleSecs === null ? null : cfg.modelIdleSecs * 1000,
    pinned: cfg.pinnedModels,
    loadAtStart: cfg.loadAtStart,
    ...hooks,
  };
}

/** The warning once the demo model was written (`demo`: its file) into an empty models dir. */
export function demoModelWarning(modelsDir: string, demo: string): string {
  return (
    `No model in ${modelsDir}: wrote a RANDOM-WEIGHT DEMO model (${demo}). ` +
    "Its output is noise. Put a real .gguf in LLM_NODE_MODELS_DIR (or set LLM_NODE_DEMO_MODEL=false)."
  );
}

/** The line logged once the node has started: the models loaded (`loaded`) of the `onDisk` found. */
export function startSummary(modelsDir: string, loaded: string[], onDisk: number): string {
  return (
    `Loaded ${loaded.length} of the ${onDisk} model(s) in ${modelsDir}: ${loaded.join(", ") || "(none)"}` +
    (onDisk > loaded.length ? " (the others load on their first request)" : "")
  );
}
