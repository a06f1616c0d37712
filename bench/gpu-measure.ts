/**
 * The measuring half of bench/gpu.sh (see there and bench/README.md): on a
 * generated model, node-llama-cpp's tokens/s driven directly vs through a
 * router (all services in one process, one local inference node, as
 * `npm start` runs), on CUDA (`--mode gpu`) or on the CPU (`--mode cpu`), and
 * the node heartbeat's GPU fields against `nvidia-smi` taken at the same
 * moment, under load and idle.
 *
 *   node gpu-measure.cjs run --mode gpu|cpu --router-main FILE --work DIR --out DIR [--model FILE]
 *   node gpu-measure.cjs model --mode gpu|cpu --out FILE.gguf  # write the model (and FILE.gguf.json) first
 *   node gpu-measure.cjs probe --gpu cuda|false      # load the binding, print what it found (JSON)
 *   node gpu-measure.cjs direct --gpu false --model FILE ...  # one side alone, JSON on stdout
 *
 * This file is the entry and the run's steps; the parts are bench/gpu-common.ts
 * (log, env numbers, medians), gpu-model.ts (the generated model),
 * gpu-throughput.ts (tokens/s direct and through the router, the CPU in a
 * child), gpu-router.ts (starting the router, its API), gpu-heartbeat.ts (the
 * heartbeat vs nvidia-smi) and gpu-summary.ts (gpu-summary.md).
 * bench/gpu-pack.sh bundles this file with esbuild, which follows the imports
 * into one gpu-measure.cjs (node-llama-cpp stays external);
 * `node --import tsx bench/gpu-measure.ts ...` runs it from the source tree
 * too. Every step is logged to stderr with the time since GPU_T0_MS
 * (bench/gpu.sh's start); the first failed step stops the run, writing what
 * was measured so far, and exits 1.
 *
 * Env (defaults for gpu / cpu mode): MODEL_DIMS "embedding,layers,ff,heads,kvHeads"
 * (2048,8,5632,16,8: 379 M parameters, f16 722 MiB / 512,4,1376,8,8), MAX_TOKENS (256 / 24),
 * ROUNDS (5 / 2), BATCHES (2), PARALLEL (4), CONTEXT (2048), THREADS (half the
 * cores, as the node's default), LOAD_SECONDS (8 / 4), CPU_COMPARE (1 in gpu
 * mode: the same model on the CPU, directly, in a child process),
 * CPU_MAX_TOKENS (24), FALLBACK_CHECK (1 in gpu mode: the heartbeat once more
 * with nvidia-smi out of the node's PATH, so node-llama-cpp's own GPU report is
 * what it sends).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { type GpuOption, log, num, round, type Step } from "./gpu-common";
import { heartbeatUnderLoad, heartbeatWithoutNvidiaSmi, nvidiaSmi } from "./gpu-heartbeat";
import { type ModelDims, modelDims, parameterCount, writeModel } from "./gpu-model";
import { ADMIN_PASSWORD, prepareRouter, startRouter } from "./gpu-router";
import { type Results, summary } from "./gpu-summary";
import {
  directCommand,
  directCpuInChild,
  directEngine,
  loadLlama,
  measureThroughput,
  routerRunner,
} from "./gpu-throughput";

/** Set while a run is on: saves what was measured and stops the router (SIGTERM from gpu.sh's time limit). */
let onTerm: (() => Promise<void>) | null = null;
let terminating = false;
process.on("SIGTERM", () => {
  terminating = true;
  log("SIGTERM: stopping, keeping what was measured");
  void (onTerm ?? (async () => undefined))().finally(() => process.exit(124));
});

// ---- the run -----------------------------------------------------------------------

class StepFailure extends Error {
  constructor(
    readonly step: string,
    readonly reason: unknown,
  ) {
    super(`${step}: ${reason instanceof Error ? reason.message : String(reason)}`);
  }
}

async function run(values: Record<string, string | boolean | undefined>): Promise<number> {
  const mode = values.mode === "cpu" ? "cpu" : "gpu";
  // GPU_TEST_CPU_BACKEND=1: gpu mode's steps on the CPU backend, for checking this script where there is no GPU
  const gpu: GpuOption = mode === "gpu" && process.env.GPU_TEST_CPU_BACKEND !== "1" ? "cuda" : false;
  const out = path.resolve(String(values.out ?? fs.mkdtempSync(path.join(os.tmpdir(), "gpu-bench-out-"))));
  const work = path.resolve(String(values.work ?? fs.mkdtempSync(path.join(os.tmpdir(), "gpu-bench-"))));
  const routerMain = path.resolve(String(values["router-main"] ?? path.join(__dirname, "main.cjs")));
  fs.mkdirSync(out, { recursive: true });
  fs.mkdirSync(work, { recursive: true });
  const cores = os.cpus().length;
  const cfg = {
    parallel: num("PARALLEL", 4),
    context: num("CONTEXT", 2048),
    threads: num("THREADS", Math.max(1, Math.floor(cores / 2))),
    maxTokens: num("MAX_TOKENS", mode === "gpu" ? 256 : 24),
    rounds: num("ROUNDS", mode === "gpu" ? 5 : 2),
    batches: num("BATCHES", 2),
    levels: [1, num("PARALLEL", 4)],
    loadSeconds: num("LOAD_SECONDS", mode === "gpu" ? 8 : 4),
    cpuCompare: num("CPU_COMPARE", mode === "gpu" ? 1 : 0) === 1,
    cpuMaxTokens: num("CPU_MAX_TOKENS", 24),
    fallbackCheck: num("FALLBACK_CHECK", mode === "gpu" ? 1 : 0) === 1,
  };
  const dims = modelDims(mode);
  const results: Results = {
    ok: false,
    mode,
    startedAt: new Date().toISOString(),
    machine: {
      cpus: cores,
      cpuModel: os.cpus()[0]?.model,
      memoryGiB: round(os.totalmem() / 1024 ** 3),
      node: process.version,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    },
    config: { ...cfg, model: { ...dims, f16: true, parameters: parameterCount(dims) } },
    setup: process.env.GPU_SETUP?.split("\n").filter(Boolean) ?? [],
    steps: [],
  };
  const save = () => {
    fs.writeFileSync(path.join(out, "gpu-results.json"), JSON.stringify(results, null, 2) + "\n");
    fs.writeFileSync(path.join(out, "gpu-summary.md"), summary(results));
  };
  const step: Step = async (name, fn) => {
    log(`step: ${name}`);
    current = name;
    const t = performance.now();
    try {
      const v = await fn();
      results.steps.push({ name, seconds: round((performance.now() - t) / 1000, 1)!, ok: true });
      log(`  done: ${name} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
      return v;
    } catch (err) {
      results.steps.push({ name, seconds: round((performance.now() - t) / 1000, 1)!, ok: false });
      throw new StepFailure(name, err);
    }
  };

  const cleanups: Array<() => Promise<void>> = [];
  let current = "";
  onTerm = async () => {
    results.ok = false;
    results.failedStep = current || "(between steps)";
    results.error = "stopped by SIGTERM (bench/gpu.sh's TIME_LIMIT_S)";
    save();
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    // 1. the model: written by `model` beforehand (gpu.sh does, while it probes), or now
    const file = values.model ? path.resolve(String(values.model)) : path.join(work, "models", "gpu-bench.gguf");
    const modelsDir = path.dirname(file);
    const modelId = path.basename(file, ".gguf");
    await step(values.model ? "the model (written beforehand)" : "generate the model", async () => {
      if (values.model) {
        if (!fs.existsSync(`${file}.json`)) throw new Error(`no ${file}.json: was the model written?`);
        results.model = JSON.parse(fs.readFileSync(`${file}.json`, "utf8"));
        const d = (results.model as { dims: ModelDims }).dims;
        (results.config as Record<string, unknown>).model = { ...d, f16: true, parameters: parameterCount(d) };
        if (fs.readdirSync(modelsDir).filter((f) => f.endsWith(".gguf")).length !== 1) {
          throw new Error(`${modelsDir} must hold this model only: the node serves every .gguf there`);
        }
      } else results.model = writeModel(file, dims, cfg.context);
    });

    const smiStart = await nvidiaSmi();
    results.nvidiaSmiAtStart = smiStart;
    if (mode === "gpu" && !smiStart?.length) throw new StepFailure("nvidia-smi", new Error("no GPU listed"));

    // 2. the CPU for comparison, in a child process (one binding per process)
    if (cfg.cpuCompare) {
      results.directCpu = await step("direct, CPU (child process)", () =>
        directCpuInChild(file, cfg.cpuMaxTokens, cores),
      );
    }

    // 3. node-llama-cpp here, on the mode's backend
    const direct = await step(`direct engine: getLlama({gpu: ${JSON.stringify(gpu)}}) and load`, () =>
      directEngine(gpu, file, cfg),
    );
    cleanups.push(() => direct.dispose());
    results.binding = direct.info;
    log(`  binding: ${JSON.stringify(direct.info)}`);

    // 4. the router: all services in one process, as `npm start`
    const routerLog = path.join(out, "router.log");
    const routerEnv = (extra: Record<string, string | undefined> = {}) => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? work,
      LD_LIBRARY_PATH: process.env.LD_LIBRARY_PATH,
      LOGLEVEL: "info",
      LLM_ROUTER_DATA_DIR: fs.mkdtempSync(path.join(work, "data-")),
      LLM_ROUTER_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LLM_ROUTER_HOST: "127.0.0.1",
      LLM_ROUTER_PORT: "0",
      LLM_NODE_MODELS_DIR: modelsDir,
      LLM_NODE_DEMO_MODEL: "false",
      LLM_NODE_GPU: gpu ? "cuda" : "false",
      LLM_NODE_PARALLEL: String(cfg.parallel),
      LLM_NODE_THREADS: String(cfg.threads),
      LLM_NODE_CONTEXT_SIZE: String(cfg.context),
      LLM_NODE_HEARTBEAT_SECS: "1",
      ...extra,
    });
    const router = await step("start the router (embedded, one local inference node)", () =>
      startRouter(routerMain, routerEnv(), routerLog),
    );
    cleanups.push(() => router.stop());
    const creds = await step("log in, make an API key, wait for the model", () =>
      prepareRouter(router.url, modelId, 180_000),
    );
    const viaRouter = await routerRunner(router.url, creds.key, modelId);

    // 5. tokens/s, paired per round: the same prompts both ways (greedy: the same tokens)
    results.throughput = await measureThroughput(step, direct.run, viaRouter, cfg);
    save();

    // 6. the heartbeat's GPU fields vs nvidia-smi, under load (PARALLEL streams kept busy) and idle
    results.heartbeat = await step(`heartbeat vs nvidia-smi: ${cfg.loadSeconds} s of load, then idle`, () =>
      heartbeatUnderLoad(router.url, creds.token, viaRouter, cfg, mode, gpu),
    );
    save();

    // 7. the same without nvidia-smi on the node's PATH: what node-llama-cpp itself reports
    if (cfg.fallbackCheck) {
      await router.stop();
      results.heartbeatWithoutNvidiaSmi = await step("heartbeat from node-llama-cpp (no nvidia-smi on PATH)", () =>
        heartbeatWithoutNvidiaSmi(
          () => startRouter(routerMain, routerEnv({ PATH: "/nonexistent" }), routerLog),
          (c) => cleanups.push(c),
          modelId,
        ),
      );
    }

    const hbOk = (results.heartbeat as { checks: { ok: boolean } }).checks.ok;
    results.ok = hbOk;
    if (!hbOk) results.error = "the heartbeat's GPU fields do not match nvidia-smi (see heartbeat.checks)";
    save();
    return results.ok ? 0 : 2;
  } catch (err) {
    const failure = err instanceof StepFailure ? err : new StepFailure("(unnamed)", err);
    results.ok = false;
    results.failedStep = failure.step;
    results.error =
      failure.reason instanceof Error ? (failure.reason.stack ?? failure.reason.message) : String(failure.reason);
    // requests cut short by the stop fail too: the stop is what to report
    if (terminating) results.error = `stopped by SIGTERM (bench/gpu.sh's TIME_LIMIT_S); then: ${results.error}`;
    log(`FAILED at step '${failure.step}': ${results.error}`);
    save();
    return 1;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    save();
  }
}

// ---- entry ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const [cmd, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      mode: { type: "string" },
      out: { type: "string" },
      work: { type: "string" },
      "router-main": { type: "string" },
      gpu: { type: "string" },
      model: { type: "string" },
      "max-tokens": { type: "string" },
    },
  });
  const gpuOpt = (): GpuOption => (values.gpu === "cuda" ? "cuda" : false);
  if (cmd === "model") {
    if (!values.out) throw new Error("--out FILE.gguf");
    writeModel(path.resolve(values.out), modelDims(values.mode === "cpu" ? "cpu" : "gpu"), num("CONTEXT", 2048));
    return 0;
  }
  if (cmd === "probe") {
    const { llama, info } = await loadLlama(gpuOpt());
    await llama.dispose();
    process.stdout.write(JSON.stringify(info) + "\n");
    return 0;
  }
  if (cmd === "direct") {
    if (!values.model) throw new Error("--model FILE");
    return directCommand(gpuOpt(), values.model, Number(values["max-tokens"] ?? 24));
  }
  if (cmd === "run") return run(values);
  throw new Error("usage: gpu-measure run|probe|direct ...");
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
