/**
 * bench/gpu-measure.ts's tokens/s: the same requests run on node-llama-cpp
 * directly and through the router, in batches of P concurrent, paired per
 * round; and the same model on the CPU, directly, in a child process (the
 * `direct` command).
 */
import { spawn } from "node:child_process";
import os from "node:os";
import type { Llama, LlamaModel } from "node-llama-cpp" with { "resolution-mode": "import" };
import { type GpuOption, type Json, log, MIB, median, num, round, type Step } from "./gpu-common";

type NodeLlamaCpp = typeof import("node-llama-cpp", { with: { "resolution-mode": "import" } });

// ---- one side: node-llama-cpp directly ----------------------------------------

const prompt = (k: number) => `Tell me story number ${k} about a lighthouse keeper and the ships that pass.`;

export interface RequestResult {
  tokens: number;
  /** ms from sending to the first text */
  ttftMs: number;
  totalMs: number;
}
export type Runner = (k: number, maxTokens: number) => Promise<RequestResult>;

export interface Direct {
  run: Runner;
  info: Record<string, unknown>;
  dispose(): Promise<void>;
}

export async function loadLlama(
  gpu: GpuOption,
): Promise<{ lib: NodeLlamaCpp; llama: Llama; info: Record<string, unknown> }> {
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

export async function directEngine(
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

export async function routerRunner(url: string, key: string, model: string): Promise<Runner> {
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

/**
 * tokens/s, paired per round: the same prompts both ways (greedy: the same
 * tokens), after a warm-up; the order of the two sides alternates per round.
 */
export async function measureThroughput(
  step: Step,
  direct: Runner,
  viaRouter: Runner,
  cfg: { levels: number[]; rounds: number; batches: number; maxTokens: number },
) {
  const stats = { direct: new Map<number, LevelStats>(), router: new Map<number, LevelStats>() };
  for (const p of cfg.levels) for (const m of Object.values(stats)) m.set(p, { tps: [], tokens: [], ttftMs: [] });
  const ratios = new Map<number, number[]>(cfg.levels.map((p) => [p, []]));
  let k = 0;
  await step("warm-up, both sides", async () => {
    for (const p of cfg.levels) {
      await batches(direct, p, k, 1, 16);
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
          got[side] = await batches(side === "direct" ? direct : viaRouter, p, k, cfg.batches, cfg.maxTokens);
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
  return {
    direct: summarizeLevels(stats.direct),
    router: summarizeLevels(stats.router),
    routerOverDirect: Object.fromEntries([...ratios].map(([p, rs]) => [p, round(median(rs), 3)])),
  };
}

// ---- the CPU for comparison -----------------------------------------------------------

/** `direct` (below) in a child process (one binding per process), on the CPU: its JSON. */
export async function directCpuInChild(file: string, maxTokens: number, cores: number): Promise<Json> {
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
      String(maxTokens),
    ],
    { env: { ...process.env, THREADS: String(Math.max(1, cores - 2)) }, stdio: ["ignore", "pipe", "inherit"] },
  );
  let stdout = "";
  child.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`exited with ${code}`);
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

/** The `direct` command: node-llama-cpp alone on `model`, P = 1 and PARALLEL; JSON on stdout. */
export async function directCommand(gpu: GpuOption, model: string, maxTokens: number): Promise<number> {
  const threads = num("THREADS", Math.max(1, Math.floor(os.cpus().length / 2)));
  const parallel = num("PARALLEL", 4);
  const d = await directEngine(gpu, model, { parallel, context: num("CONTEXT", 2048), threads });
  const levels = new Map<number, LevelStats>();
  await batches(d.run, 1, 0, 1, 4); // warm-up
  for (const p of [1, parallel]) {
    const r = await batches(d.run, p, 10, 1, maxTokens);
    levels.set(p, { tps: [r.tps], tokens: [r.tokens], ttftMs: r.ttft });
    log(`  CPU direct P=${p}: ${r.tps.toFixed(1)} tok/s`);
  }
  await d.dispose();
  process.stdout.write(JSON.stringify({ binding: d.info, threads, maxTokens, levels: summarizeLevels(levels) }) + "\n");
  return 0;
}
