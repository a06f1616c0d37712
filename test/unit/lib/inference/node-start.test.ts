/** An inference node's start (lib/inference/node-start.ts): engine, model manager options, log lines. */
import type { NodeConfig } from "../../../../lib/config";
import { InstantEngine } from "../../../../lib/inference/instant-engine";
import { createEngine, demoModelWarning, managerOptions, startSummary } from "../../../../lib/inference/node-start";

const cfg = (over: Partial<NodeConfig> = {}): NodeConfig => ({
  modelsDir: "/models",
  name: "box",
  parallel: 3,
  streamBatch: { windowMs: 5, maxChunks: 16 },
  threads: 0,
  contextSize: 4096,
  gpu: "auto",
  heartbeatSecs: 10,
  demoModel: false,
  engine: "instant",
  instantMsPerToken: 0,
  maxLoadedModels: 2,
  memoryBudget: 1e9,
  modelIdleSecs: 90,
  pinnedModels: ["org/a"],
  loadAtStart: "pinned",
  ...over,
});

describe("node start", () => {
  test("the manager's options follow the configuration; no idle time stays none", () => {
    const log = () => undefined;
    const onChange = () => undefined;
    expect(managerOptions(cfg(), { log, onChange })).toEqual({
      modelsDir: "/models",
      maxLoaded: 2,
      budgetBytes: 1e9,
      idleMs: 90_000,
      pinned: ["org/a"],
      loadAtStart: "pinned",
      log,
      onChange,
    });
    expect(managerOptions(cfg({ modelIdleSecs: null, maxLoadedModels: null }), { log, onChange })).toMatchObject({
      idleMs: null,
      maxLoaded: null,
    });
  });

  test("LLM_NODE_ENGINE=instant: the instant engine, with the node's parallel slots", async () => {
    const engine = await createEngine(cfg(), () => undefined);
    expect(engine).toBeInstanceOf(InstantEngine);
    expect(engine.kind).toBe("instant (simulated)");
    await engine.dispose();
  });

  test("the start line says what loaded, and that the others load on demand", () => {
    expect(startSummary("/models", ["a", "b"], 2)).toBe("Loaded 2 of the 2 model(s) in /models: a, b");
    expect(startSummary("/models", [], 3)).toBe(
      "Loaded 0 of the 3 model(s) in /models: (none) (the others load on their first request)",
    );
  });

  test("the demo model's warning names the file and how to replace it", () => {
    expect(demoModelWarning("/models", "/models/demo.gguf")).toBe(
      "No model in /models: wrote a RANDOM-WEIGHT DEMO model (/models/demo.gguf). " +
        "Its output is noise. Put a real .gguf in LLM_NODE_MODELS_DIR (or set LLM_NODE_DEMO_MODEL=false).",
    );
  });
});
