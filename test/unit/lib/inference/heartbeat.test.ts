/**
 * An inference node's heartbeat (lib/inference/heartbeat.ts): loaded models
 * with their load, totals, machine metrics, the models on disk and memory.
 */
import type { CatalogEntry } from "../../../../lib/cluster/types";
import { buildHeartbeat, type HeartbeatInput } from "../../../../lib/inference/heartbeat";

const machine = { cpu: { usage: 12.5, cores: 8 }, memory: { used: 1, total: 2 }, gpus: [] };

const entry = (id: string): CatalogEntry => ({
  id,
  sizeBytes: 100,
  quantization: "Q4_K_M",
  estimatedBytes: 150,
  state: "ready",
  error: null,
  pinned: false,
  inUse: 0,
  memoryBytes: 150,
  lastUsedAt: 1,
  loadMs: 5,
  loads: 1,
});

function input(over: Partial<HeartbeatInput> = {}): HeartbeatInput {
  return {
    nodeID: "node-a",
    machineName: "box",
    gpuBackend: "auto",
    engineKind: "instant (simulated)",
    initializing: false,
    models: [],
    load: [],
    machine,
    tokensPerSecond: 0,
    catalog: [],
    limits: null,
    usedBytes: 0,
    sentAt: 1000,
    ...over,
  };
}

describe("buildHeartbeat", () => {
  test("before the engine exists: 'loading', nothing loaded, no limits", () => {
    expect(buildHeartbeat(input({ engineKind: null, initializing: true }))).toEqual({
      nodeID: "node-a",
      machineName: "box",
      engine: "loading",
      initializing: true,
      models: [],
      active: 0,
      queued: 0,
      capacity: 0,
      cpu: machine.cpu,
      memory: machine.memory,
      gpus: [],
      gpuBackend: "auto",
      tokensPerSecond: 0,
      catalog: [],
      modelMemory: { maxLoaded: null, budgetBytes: null, usedBytes: 0 },
      sentAt: 1000,
    });
  });

  test("each loaded model with its load (none reported: idle), and the totals over all loads", () => {
    const hb = buildHeartbeat(
      input({
        models: [
          { id: "a", path: "/m/a.gguf", sizeBytes: 10, contextSize: 4096, parallel: 2 },
          { id: "b", path: "/m/b.gguf", sizeBytes: 20, contextSize: 2048, parallel: 1 },
        ],
        load: [
          { id: "a", active: 2, queued: 3, capacity: 2 },
          { id: "gone", active: 1, queued: 0, capacity: 4 },
        ],
        tokensPerSecond: 42,
      }),
    );
    expect(hb.models).toEqual([
      { id: "a", contextSize: 4096, parallel: 2, sizeBytes: 10, active: 2, queued: 3 },
      { id: "b", contextSize: 2048, parallel: 1, sizeBytes: 20, active: 0, queued: 0 },
    ]);
    expect(hb).toMatchObject({ active: 3, queued: 3, capacity: 6, tokensPerSecond: 42 });
  });

  test("the models on disk, the manager's limits and the memory held", () => {
    const hb = buildHeartbeat(
      input({
        catalog: [entry("a"), entry("c")],
        limits: { maxLoaded: 2, budgetBytes: 1e9 },
        usedBytes: 150,
        gpuBackend: false,
      }),
    );
    expect(hb.catalog?.map((e) => e.id)).toEqual(["a", "c"]);
    expect(hb.modelMemory).toEqual({ maxLoaded: 2, budgetBytes: 1e9, usedBytes: 150 });
    expect(hb.gpuBackend).toBe(false);
  });
});
