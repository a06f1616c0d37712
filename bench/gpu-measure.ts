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
 * bench/gpu-pack.sh bundles this file with esbuild (node-llama-cpp stays
 * external); `node --import tsx bench/gpu-measure.ts ...` runs it from the
 * source tree too. Every step is logged to stderr with the time since
 * GPU_T0_MS (bench/gpu.sh's start); the first failed step stops the run,
 * writing what was measured so far, and exits 1.
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
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Llama, LlamaModel } from "node-llama-cpp" with { "resolution-mode": "import" };
import { buildTinyLlama, tinyModelOptions } from "../lib/gguf/tiny-llama";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the results and the router's answers are read as plain JSON
type Json = any;
type NodeLlamaCpp = typeof import("node-llama-cpp", { with: { "resolution-mode": "import" } });
type GpuOption = "cuda" | false;

const T0 = Number(process.env.GPU_T0_MS) || Date.now();
/** Set while a run is on: saves what was measured and stops the router (SIGTERM from gpu.sh's time limit). */
let onTerm: (() => Promise<void>) | null = null;
let terminating = false;
process.on("SIGTERM", () => {
  terminating = true;
  log("SIGTERM: stopping, keeping what was measured");
  void (onTerm ?? (async () => undefined))().finally(() => process.exit(124));
});
const MIB = 1024 * 1024;

function log(msg: string): void {
  const now = new Date();
  const since = ((now.getTime() - T0) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[${now.toISOString().slice(11, 19)} +${since}s] ${msg}\n`);
}

const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new Error(`${name}=${raw} is not a number`);
  return v;
};

const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

// ---- nvidia-smi ---------------------------------------------------------------

export interface SmiGpu {
  name: string;
  utilization: number | null;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
}

const SMI_QUERY = ["--query-gpu=name,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"];

/** The query the issue names, read the way lib/metrics/gpu.ts reads it (MiB); null when nvidia-smi is missing. */
function nvidiaSmi(): Promise<SmiGpu[] | null> {
  return new Promise((resolve) => {
    execFile("nvidia-smi", SMI_QUERY, { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve(null);
      const n = (s: string | undefined) => (s !== undefined && /^\d+(\.\d+)?$/.test(s.trim()) ? Number(s) : null);
      resolve(
        stdout
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean)
          .map((line) => {
            const [name, util, used, total] = line.split(",").map((s) => s.trim());
            return { name, utilization: n(util), memoryUsedMiB: n(used), memoryTotalMiB: n(total) };
          }),
      );
    });
  });
}

// ---- the model ------------------------------------------------------------------

interface ModelDims {
  embedding: number;
  layers: number;
  feedForward: number;
  heads: number;
  kvHeads: number;
}

function modelDims(mode: "gpu" | "cpu"): ModelDims {
  const raw = process.env.MODEL_DIMS || (mode === "gpu" ? "2048,8,5632,16,8" : "512,4,1376,8,8");
  const [embedding, layers, feedForward, heads, kvHeads] = raw.split(",").map(Number);
  if (![embedding, layers, feedForward, heads, kvHeads].every((v) => Number.isInteger(v) && v > 0)) {
    throw new Error(`MODEL_DIMS=${raw}: want "embedding,layers,ff,heads,kvHeads"`);
  }
  return { embedding, layers, feedForward, heads, kvHeads };
}

function parameterCount(d: ModelDims): number {
  const kvDim = (d.embedding / d.heads) * d.kvHeads;
  const perLayer = 2 * d.embedding * d.embedding + 2 * d.embedding * kvDim + 3 * d.embedding * d.feedForward;
  return d.layers * perLayer + 2 * 262 * d.embedding;
}

/**
 * Writes the model as `npm run make-model` does (lib/gguf: seeded random f16
 * weights, printable output, never EOS), with `dims`; `FILE.json` keeps what
 * a later `run --model FILE` reports. Takes about 100 ns per parameter.
 */
function writeModel(file: string, dims: ModelDims, context: number): Record<string, unknown> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const t = performance.now();
  const id = path.basename(file, ".gguf");
  const bytes = buildTinyLlama(
    tinyModelOptions("tiny", { ...dims, f16: true, contextLength: context, name: id, seed: 7 }),
  );
  fs.writeFileSync(file, bytes);
  const meta = {
    file,
    dims,
    contextLength: context,
    bytes: bytes.length,
    mib: round(bytes.length / MIB, 0),
    parameters: parameterCount(dims),
    seconds: round((performance.now() - t) / 1000, 1),
  };
  fs.writeFileSync(`${file}.json`, JSON.stringify(meta) + "\n");
  log(`  ${file}: ${meta.mib} MiB, ${(meta.parameters / 1e6).toFixed(0)} M parameters, written in ${meta.seconds} s`);
  return meta;
}

// ---- one side: node-llama-cpp directly ----------------------------------------

const prompt = (k: number) => `Tell me story number ${k} about a lighthouse keeper and the ships that pass.`;

interface RequestResult {
  tokens: number;
  /** ms from sending to the first text */
  ttftMs: number;
  totalMs: number;
}
type Runner = (k: number, maxTokens: number) => Promise<RequestResult>;

interface Direct {
  run: Runner;
  info: Record<string, unknown>;
  dispose(): Promise<void>;
}

async function loadLlama(gpu: GpuOption): Promise<{ lib: NodeLlamaCpp; llama: Llama; info: Record<string, unknown> }> {
  const lib: NodeLlamaCpp = await import("node-llama-cpp");
  // as lib/inference/llama-engine.ts does: never build at run time
  // LLAMA_LOG_LEVEL=debug shows why a backend did not load (gpu.sh retries a failed probe so)
  const level = (process.env.LLAMA_LOG_LEVEL ?? "error") as keyof typeof lib.LlamaLogLevel;
  const llama = await lib.getLlama({
    gpu,
    build: "never",
    logLevel: lib.LlamaLogLevel[level] ?? lib.LlamaLogLevel.error,
  });
  const info: Record<string, unknown> = {
    requested: gpu,
    gpu: llama.gpu,
    buildType: llama.buildType,
    cmakeOptions: llama.cmakeOptions,
    llamaCppRelease: llama.llamaCppRelease,
  };
  if (llama.gpu) {
    info.devices = await llama.getGpuDeviceNames();
    const vram = await llama.getVramState();
    info.vram = { usedMiB: round(vram.used / MIB, 0), totalMiB: round(vram.total / MIB, 0) };
  }
  if (gpu && llama.gpu !== gpu) {
    await llama.dispose();
    throw new Error(`asked node-llama-cpp for ${gpu}, got ${String(llama.gpu)}: ${JSON.stringify(info)}`);
  }
  return { lib, llama, info };
}

async function directEngine(
  gpu: GpuOption,
  file: string,
  opts: { parallel: number; context: number; threads: number },
): Promise<Direct> {
  const { lib, llama, info } = await loadLlama(gpu);
  const t0 = performance.now();
  const model: LlamaModel = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({
    sequences: opts.parallel,
    contextSize: Math.min(opts.context, model.trainContextSize),
    threads: opts.threads,
  });
  info.modelLoadSeconds = round((performance.now() - t0) / 1000, 2);
  info.gpuLayers = model.gpuLayers;
  if (llama.gpu) {
    const vram = await llama.getVramState();
    info.vramAfterLoad = { usedMiB: round(vram.used / MIB, 0), totalMiB: round(vram.total / MIB, 0) };
  }
  const free = Array.from({ length: opts.parallel }, () => context.getSequence());
  const wrapper = lib.resolveChatWrapper(model);
  const run: Runner = async (k, maxTokens) => {
    const sequence = free.pop();
    if (!sequence) throw new Error("more concurrent requests than sequences");
    const chat = new lib.LlamaChat({ contextSequence: sequence, chatWrapper: wrapper, autoDisposeSequence: false });
    let tokens = 0;
    let first = 0;
    const t = performance.now();
    try {
      await chat.generateResponse(
        [
          { type: "user", text: prompt(k) },
          { type: "model", response: [] },
        ],
        {
          maxTokens,
          temperature: 0,
          onToken: (tk) => {
            tokens += tk.length;
          },
          onTextChunk: (text) => {
            if (!first && text) first = performance.now();
          },
        },
      );
      const end = performance.now();
      return { tokens, ttftMs: (first || end) - t, totalMs: end - t };
    } finally {
      chat.dispose();
      free.push(sequence);
    }
  };
  return { run, info, dispose: () => llama.dispose() };
}

// ---- the other side: through the router ------------------------------------------

async function routerRunner(url: string, key: string, model: string): Promise<Runner> {
  return async (k, maxTokens) => {
    const t = performance.now();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({
        model,
        messages: [{ role: "user", content: prompt(k) }],
        max_tokens: maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    if (res.status !== 200 || !res.body) throw new Error(`router: HTTP ${res.status} ${await res.text()}`);
    let first = 0;
    let tokens = -1;
    let done = false;
    let buf = "";
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") {
          done = true;
          continue;
        }
        const ev = JSON.parse(data) as {
          choices?: Array<{ delta?: { content?: string } }>;
          usage?: { completion_tokens: number } | null;
          error?: unknown;
        };
        if (ev.error) throw new Error(`router stream error: ${JSON.stringify(ev.error)}`);
        if (!first && ev.choices?.some((c) => c.delta?.content)) first = performance.now();
        if (ev.usage) tokens = ev.usage.completion_tokens;
      }
    }
    const end = performance.now();
    if (!done) throw new Error("router stream ended without [DONE]");
    if (tokens < 0) throw new Error("router stream had no usage chunk");
    return { tokens, ttftMs: (first || end) - t, totalMs: end - t };
  };
}

interface RouterProc {
  child: ChildProcess;
  url: string;
  output: () => string;
  stop(): Promise<void>;
}

const ADMIN_PASSWORD = "gpu-bench-admin-password";

async function startRouter(
  main: string,
  env: Record<string, string | undefined>,
  logFile: string,
  timeoutMs = 180_000,
): Promise<RouterProc> {
  const args = main.endsWith(".ts") ? ["--import", "tsx", main, "start"] : [main, "start"];
  const child = spawn(process.execPath, args, { env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const sink = fs.createWriteStream(logFile, { flags: "a" });
  const take = (b: Buffer) => {
    out += b.toString("utf8");
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    sink.write(b);
  };
  child.stdout!.on("data", take);
  child.stderr!.on("data", take);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    sink.end();
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = out.match(/LLM Router listening on (http:\/\/\S+)/);
    if (m) return { child, url: m[1].replace(/\/$/, ""), output: () => out, stop };
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `the router ${child.exitCode !== null ? `exited with ${child.exitCode}` : "did not listen in time"}:\n${out.slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function json(url: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: Json }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
  const text = await res.text();
  try {
    return { status: res.status, body: text ? JSON.parse(text) : null };
  } catch {
    return { status: res.status, body: text };
  }
}

async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | null | undefined | false>) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Logs in as the admin, makes an API key, waits until the model is served; returns both credentials. */
async function prepareRouter(url: string, model: string, timeoutMs: number) {
  const login = await json(`${url}/api/auth/login`, {
    method: "POST",
    body: JSON.stringify({ username: "admin", password: ADMIN_PASSWORD }),
  });
  if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`);
  const token = (login.body as { token: string }).token;
  const made = await json(`${url}/api/api-keys`, {
    method: "POST",
    token,
    body: JSON.stringify({ name: "gpu-bench" }),
  });
  if (made.status !== 201) throw new Error(`API key: ${made.status} ${JSON.stringify(made.body)}`);
  const key = (made.body as { key: string }).key;
  await waitFor(`${model} at the router`, timeoutMs, async () => {
    const r = await json(`${url}/v1/models`, { token: key });
    return (r.body as { data?: Array<{ id: string }> })?.data?.some((m) => m.id === model);
  });
  return { token, key };
}

interface NodeGpuView {
  name: string;
  utilization: number | null;
  vram_used_bytes: number;
  vram_total_bytes: number;
}
interface NodeView {
  id: string;
  kind: string;
  gpu_backend: string | false;
  gpus: NodeGpuView[];
  tokens_per_second: number;
  last_seen: string;
  active_requests: number;
}

async function inferenceNode(url: string, token: string): Promise<NodeView | null> {
  const r = await json(`${url}/api/nodes`, { token });
  if (r.status !== 200) throw new Error(`GET /api/nodes: ${r.status} ${JSON.stringify(r.body)}`);
  const list = (Array.isArray(r.body) ? r.body : ((r.body as { data?: NodeView[] })?.data ?? [])) as NodeView[];
  return list.find((n) => n.kind === "inference") ?? null;
}

// ---- measuring -------------------------------------------------------------------

interface LevelStats {
  tps: number[];
  tokens: number[];
  ttftMs: number[];
}

/** BATCHES batches of p concurrent requests (prompts from k0 on): aggregate tokens/s, tokens, TTFTs. */
async function batches(run: Runner, p: number, k0: number, nBatches: number, maxTokens: number) {
  let tokens = 0;
  const ttft: number[] = [];
  const t0 = performance.now();
  for (let b = 0; b < nBatches; b++) {
    const results = await Promise.all(Array.from({ length: p }, (_, j) => run(k0 + b * p + j, maxTokens)));
    for (const r of results) {
      tokens += r.tokens;
      ttft.push(r.ttftMs);
    }
  }
  return { tps: tokens / ((performance.now() - t0) / 1000), tokens, ttft };
}

function summarizeLevels(stats: Map<number, LevelStats>) {
  return Object.fromEntries(
    [...stats].map(([p, s]) => [
      p,
      {
        tokensPerSecondMedian: round(median(s.tps)),
        tokensPerSecondRounds: s.tps.map((v) => round(v)),
        tokensPerBatchRound: s.tokens[0],
        ttftMsMedian: round(median(s.ttftMs)),
      },
    ]),
  );
}

// ---- the run -----------------------------------------------------------------------

interface Results {
  ok: boolean;
  failedStep?: string;
  error?: string;
  mode: string;
  startedAt: string;
  machine: Record<string, unknown>;
  config: Record<string, unknown>;
  steps: Array<{ name: string; seconds: number; ok: boolean }>;
  [k: string]: unknown;
}

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
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
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
      results.directCpu = await step("direct, CPU (child process)", async () => {
        const child = spawn(
          process.execPath,
          [
            ...process.execArgv,
            process.argv[1],
            "direct",
            "--gpu",
            "false",
            "--model",
            file,
            "--max-tokens",
            String(cfg.cpuMaxTokens),
          ],
          { env: { ...process.env, THREADS: String(Math.max(1, cores - 2)) }, stdio: ["ignore", "pipe", "inherit"] },
        );
        let stdout = "";
        child.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
        const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
        if (code !== 0) throw new Error(`exited with ${code}`);
        return JSON.parse(stdout.trim().split("\n").pop()!);
      });
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
    const stats = { direct: new Map<number, LevelStats>(), router: new Map<number, LevelStats>() };
    for (const p of cfg.levels) for (const m of Object.values(stats)) m.set(p, { tps: [], tokens: [], ttftMs: [] });
    const ratios = new Map<number, number[]>(cfg.levels.map((p) => [p, []]));
    let k = 0;
    await step("warm-up, both sides", async () => {
      for (const p of cfg.levels) {
        await batches(direct.run, p, k, 1, 16);
        await batches(viaRouter, p, k, 1, 16);
        k += p;
      }
    });
    await step(`tokens/s: ${cfg.rounds} rounds × levels ${cfg.levels.join(", ")}`, async () => {
      for (let r = 1; r <= cfg.rounds; r++) {
        for (const p of cfg.levels) {
          const order = r % 2 ? (["direct", "router"] as const) : (["router", "direct"] as const);
          const got: Record<string, Awaited<ReturnType<typeof batches>>> = {};
          for (const side of order) {
            got[side] = await batches(side === "direct" ? direct.run : viaRouter, p, k, cfg.batches, cfg.maxTokens);
            const s = stats[side].get(p)!;
            s.tps.push(got[side].tps);
            s.tokens.push(got[side].tokens);
            s.ttftMs.push(...got[side].ttft);
          }
          k += p * cfg.batches;
          if (got.direct.tokens !== got.router.tokens) {
            log(`  warning: P=${p} direct ${got.direct.tokens} tokens, router ${got.router.tokens}`);
          }
          ratios.get(p)!.push(got.router.tps / got.direct.tps);
          log(
            `  round ${r} P=${p}: direct ${got.direct.tps.toFixed(0)} tok/s, router ${got.router.tps.toFixed(0)} tok/s`,
          );
        }
      }
    });
    results.throughput = {
      direct: summarizeLevels(stats.direct),
      router: summarizeLevels(stats.router),
      routerOverDirect: Object.fromEntries([...ratios].map(([p, rs]) => [p, round(median(rs), 3)])),
    };
    save();

    // 6. the heartbeat's GPU fields vs nvidia-smi, under load (PARALLEL streams kept busy) and idle
    results.heartbeat = await step(`heartbeat vs nvidia-smi: ${cfg.loadSeconds} s of load, then idle`, async () => {
      const samples: Array<Record<string, unknown>> = [];
      const sample = async (phase: string) => {
        const [node, smi] = await Promise.all([inferenceNode(router.url, creds.token), nvidiaSmi()]);
        samples.push({
          phase,
          at: new Date().toISOString(),
          heartbeat: node
            ? {
                backend: node.gpu_backend,
                lastSeen: node.last_seen,
                active: node.active_requests,
                tokensPerSecond: node.tokens_per_second,
                gpus: node.gpus.map((g) => ({
                  name: g.name,
                  utilization: g.utilization,
                  memoryUsedMiB: round(g.vram_used_bytes / MIB, 0),
                  memoryTotalMiB: round(g.vram_total_bytes / MIB, 0),
                })),
              }
            : null,
          nvidiaSmi: smi,
        });
      };
      // PARALLEL streams kept busy: each worker sends the next request as soon as its last one ends
      let stop = false;
      let kk = 100_000;
      const worker = async () => {
        while (!stop) await viaRouter(kk++, cfg.maxTokens);
      };
      const workers = Array.from({ length: cfg.parallel }, () => worker());
      const end = Date.now() + cfg.loadSeconds * 1000;
      await new Promise((r) => setTimeout(r, 1500)); // the node's next heartbeat carries the load
      while (Date.now() < end) {
        await sample("load");
        await new Promise((r) => setTimeout(r, 1000));
      }
      stop = true;
      await Promise.all(workers);
      await new Promise((r) => setTimeout(r, 3000));
      await sample("idle");
      return { samples, checks: compareHeartbeat(samples, mode, gpu) };
    });
    save();

    // 7. the same without nvidia-smi on the node's PATH: what node-llama-cpp itself reports
    if (cfg.fallbackCheck) {
      await router.stop();
      results.heartbeatWithoutNvidiaSmi = await step(
        "heartbeat from node-llama-cpp (no nvidia-smi on PATH)",
        async () => {
          const r2 = await startRouter(routerMain, routerEnv({ PATH: "/nonexistent" }), routerLog);
          cleanups.push(() => r2.stop());
          const c2 = await prepareRouter(r2.url, modelId, 180_000);
          await new Promise((r) => setTimeout(r, 2500));
          const [node, smi] = await Promise.all([inferenceNode(r2.url, c2.token), nvidiaSmi()]);
          await r2.stop();
          const hb = node?.gpus.map((g) => ({
            name: g.name,
            utilization: g.utilization,
            memoryUsedMiB: round(g.vram_used_bytes / MIB, 0),
            memoryTotalMiB: round(g.vram_total_bytes / MIB, 0),
          }));
          const h = hb?.[0];
          const s = smi?.[0];
          const checks = {
            name: !!h && !!s && h.name === s.name,
            memoryTotalWithin2Percent:
              !!h &&
              !!s &&
              s.memoryTotalMiB !== null &&
              Math.abs(h.memoryTotalMiB! - s.memoryTotalMiB) <= 0.02 * s.memoryTotalMiB,
            memoryUsedWithin1GiB:
              !!h && !!s && s.memoryUsedMiB !== null && Math.abs(h.memoryUsedMiB! - s.memoryUsedMiB) <= 1024,
            utilizationNullAsDocumented: !!h && h.utilization === null,
          };
          return { backend: node?.gpu_backend, heartbeat: hb, nvidiaSmi: smi, checks };
        },
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

/** Matches each heartbeat sample's GPU 0 with nvidia-smi's at the same moment. */
function compareHeartbeat(samples: Array<Record<string, unknown>>, mode: string, gpu: GpuOption) {
  type Hb = { gpus: SmiGpu[]; backend: string | false } | null;
  const rows = samples.map((s) => ({
    phase: s.phase as string,
    hb: (s.heartbeat as Hb)?.gpus?.[0] ?? null,
    backend: (s.heartbeat as Hb)?.backend,
    smi: (s.nvidiaSmi as SmiGpu[] | null)?.[0] ?? null,
  }));
  const withBoth = rows.filter((r) => r.hb && r.smi);
  if (mode === "cpu" && !rows.some((r) => r.smi)) {
    const noGpu = rows.every((r) => !r.hb);
    return { ok: noGpu, note: "no nvidia-smi here: the heartbeat must list no GPU", heartbeatListsNoGpu: noGpu };
  }
  const load = withBoth.filter((r) => r.phase === "load");
  const name = withBoth.length > 0 && withBoth.every((r) => r.hb!.name === r.smi!.name);
  const total = withBoth.length > 0 && withBoth.every((r) => r.hb!.memoryTotalMiB === r.smi!.memoryTotalMiB);
  // the heartbeat is up to a second (one collection) older than nvidia-smi's answer
  const usedDiff = withBoth.map((r) => Math.abs(r.hb!.memoryUsedMiB! - r.smi!.memoryUsedMiB!));
  const used =
    withBoth.length > 0 && usedDiff.every((d, i) => d <= Math.max(512, 0.05 * withBoth[i].smi!.memoryUsedMiB!));
  const utilDiff = withBoth.map((r) => Math.abs((r.hb!.utilization ?? -1000) - (r.smi!.utilization ?? 0)));
  const utilNumeric = withBoth.every((r) => typeof r.hb!.utilization === "number");
  // the GPU is busy only when the node runs on it
  const utilBusy =
    !gpu || (load.some((r) => (r.hb!.utilization ?? 0) > 0) && load.some((r) => (r.smi!.utilization ?? 0) > 0));
  const backend = rows.every((r) => r.backend === gpu);
  return {
    ok: withBoth.length === rows.length && name && total && used && utilNumeric && utilBusy && backend,
    samples: rows.length,
    samplesWithBoth: withBoth.length,
    name,
    memoryTotalEqual: total,
    memoryUsedWithinMax512MiBOr5Percent: used,
    memoryUsedDiffMiB: { median: round(median(usedDiff), 0), max: usedDiff.length ? Math.max(...usedDiff) : null },
    utilizationNumeric: utilNumeric,
    utilizationAboveZeroUnderLoad: utilBusy,
    utilizationDiffPoints: { median: round(median(utilDiff), 0), max: utilDiff.length ? Math.max(...utilDiff) : null },
    gpuBackendReported: backend,
  };
}

// ---- the summary ---------------------------------------------------------------------

function summary(r: Results): string {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(
    `# GPU bench (bench/gpu.sh), mode ${r.mode}: ${r.ok ? "OK" : `FAILED${r.failedStep ? ` at '${r.failedStep}'` : ""}`}`,
  );
  lines.push("");
  lines.push(`${r.startedAt}; ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}`);
  for (const s of (r.setup as string[] | undefined) ?? []) lines.push(`- ${s}`);
  const smi = r.nvidiaSmiAtStart as SmiGpu[] | null | undefined;
  if (smi?.length) lines.push(`GPU (nvidia-smi): ${smi.map((g) => `${g.name}, ${g.memoryTotalMiB} MiB`).join("; ")}`);
  const b = r.binding as Record<string, unknown> | undefined;
  if (b) {
    lines.push(
      `node-llama-cpp binding: gpu ${JSON.stringify(b.gpu)}, ${b.buildType}, ${JSON.stringify(b.devices ?? [])}, ` +
        `${b.gpuLayers} layers offloaded, model loaded in ${b.modelLoadSeconds} s`,
    );
  }
  const model = r.model as Record<string, unknown> | undefined;
  const cfg = r.config as Record<string, Json>;
  if (model) {
    lines.push(
      `Model: generated llama, ${cfg.model.embedding} × ${cfg.model.layers} layers, ff ${cfg.model.feedForward}, ` +
        `${cfg.model.heads}/${cfg.model.kvHeads} heads, f16, ${((model.parameters as number) / 1e6).toFixed(0)} M parameters, ` +
        `${model.mib} MiB (written in ${model.seconds} s)`,
    );
  }
  lines.push(
    `Requests: chat, streamed, temperature 0, max_tokens ${cfg.maxTokens}; ${cfg.rounds} rounds × ${cfg.batches} batches ` +
      `of P concurrent; context ${cfg.context}, ${cfg.parallel} sequences, ${cfg.threads} threads`,
  );
  const t = r.throughput as Record<string, Json> | undefined;
  if (t) {
    lines.push("");
    lines.push("| P | direct tok/s | via router tok/s | router / direct (paired) | TTFT direct | TTFT router |");
    lines.push("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const p of Object.keys(t.direct)) {
      const d = t.direct[p];
      const rt = t.router[p];
      lines.push(
        `| ${p} | ${d.tokensPerSecondMedian} | ${rt.tokensPerSecondMedian} | ${(t.routerOverDirect[p] * 100).toFixed(1)} % | ` +
          `${d.ttftMsMedian} ms | ${rt.ttftMsMedian} ms |`,
      );
    }
  }
  const cpu = r.directCpu as Record<string, Json> | undefined;
  if (cpu) {
    lines.push("");
    lines.push(
      `Same model on the CPU, directly (${cpu.threads} threads, max_tokens ${cpu.maxTokens}): ` +
        Object.entries(cpu.levels as Record<string, Json>)
          .map(([p, v]) => `P=${p} ${v.tokensPerSecondMedian} tok/s`)
          .join(", "),
    );
  }
  const hb = r.heartbeat as { checks: Record<string, Json>; samples: Array<Record<string, Json>> } | undefined;
  if (hb) {
    lines.push("");
    lines.push(`Heartbeat vs nvidia-smi: ${hb.checks.ok ? "match" : "MISMATCH"} ${JSON.stringify(hb.checks)}`);
    lines.push("");
    lines.push("| phase | heartbeat: name, util %, used / total MiB | nvidia-smi: name, util %, used / total MiB |");
    lines.push("| --- | --- | --- |");
    for (const s of hb.samples) {
      const h = s.heartbeat?.gpus?.[0];
      const g = s.nvidiaSmi?.[0];
      const fmt = (x: SmiGpu | undefined) =>
        x ? `${x.name}, ${x.utilization}, ${x.memoryUsedMiB} / ${x.memoryTotalMiB}` : "(none)";
      lines.push(`| ${s.phase} | ${fmt(h)} | ${fmt(g)} |`);
    }
  }
  const fb = r.heartbeatWithoutNvidiaSmi as Record<string, Json> | undefined;
  if (fb) {
    lines.push("");
    const fmt = (x: SmiGpu | undefined) =>
      x ? `${x.name}, util ${x.utilization}, ${x.memoryUsedMiB} / ${x.memoryTotalMiB} MiB` : "(no GPU)";
    const checks = Object.entries(fb.checks as Record<string, boolean>)
      .map(([k, v]) => `${k} ${v ? "yes" : "NO"}`)
      .join(", ");
    lines.push(
      `Without nvidia-smi on the node's PATH, the heartbeat carries node-llama-cpp's report: ` +
        `${fmt(fb.heartbeat?.[0])} vs nvidia-smi ${fmt(fb.nvidiaSmi?.[0])}: ${checks}`,
    );
  }
  if (r.error) {
    lines.push("");
    lines.push("Error: " + String(r.error).split("\n").slice(0, 6).join("\n  "));
  }
  lines.push("");
  lines.push("Steps: " + r.steps.map((s) => `${s.name} ${s.seconds} s${s.ok ? "" : " (FAILED)"}`).join("; "));
  return lines.join("\n") + "\n";
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
    const maxTokens = Number(values["max-tokens"] ?? 24);
    const threads = num("THREADS", Math.max(1, Math.floor(os.cpus().length / 2)));
    const parallel = num("PARALLEL", 4);
    const d = await directEngine(gpuOpt(), values.model, { parallel, context: num("CONTEXT", 2048), threads });
    const levels = new Map<number, LevelStats>();
    await batches(d.run, 1, 0, 1, 4); // warm-up
    for (const p of [1, parallel]) {
      const r = await batches(d.run, p, 10, 1, maxTokens);
      levels.set(p, { tps: [r.tps], tokens: [r.tokens], ttftMs: r.ttft });
      log(`  CPU direct P=${p}: ${r.tps.toFixed(1)} tok/s`);
    }
    await d.dispose();
    process.stdout.write(
      JSON.stringify({ binding: d.info, threads, maxTokens, levels: summarizeLevels(levels) }) + "\n",
    );
    return 0;
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
