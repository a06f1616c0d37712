/**
 * Aggregate tokens/s of one inference node at 1, 2 and 4 parallel requests:
 * through the router (HTTP → api → balancer → NATS → node → llama.cpp) vs
 * node-llama-cpp driven directly in this process, same model file, same
 * context size, sequences and threads.
 *
 *   npm run bench:inference        # PRESET=medium MAX_TOKENS=128 ROUNDS=3, about 3 minutes
 *
 * The model is generated (lib/gguf, as `npm run make-model` does) with seeded
 * random weights; with temperature 0 both sides generate the same tokens for
 * the same prompt, and tokens are counted on each side (node-llama-cpp's
 * onToken directly, `usage.completion_tokens` through the router). Per round
 * and per parallelism P: BATCHES batches of P concurrent requests, each with
 * its own prompt, direct then router (the order flips each round); tokens/s =
 * all tokens of the batches / their wall time. Router/direct is paired per
 * round, then the median over rounds.
 */
import os from "node:os";
import path from "node:path";
import { TINY_MODEL_PRESETS, type TinyModelPreset } from "../lib/gguf/tiny-llama";
import { createKey, startCli, startNats, startRouter, tempDir, writeModel, Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";

const PRESET = (process.env.PRESET ?? "medium") as TinyModelPreset;
const MAX_TOKENS = Number(process.env.MAX_TOKENS ?? 128);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const BATCHES = Number(process.env.BATCHES ?? 3);
const PARALLEL = 4;
const THREADS = Number(process.env.THREADS ?? 1);
const CONTEXT = 4096;
const MODEL = `bench-${PRESET}`;
const LEVELS = [1, 2, 4];

const prompt = (k: number) => `Tell me story number ${k} about a lighthouse keeper.`;

type Direct = (k: number) => Promise<number>;

/** node-llama-cpp loaded here, set up the way the node's engine sets it up. */
async function directEngine(file: string): Promise<{ run: Direct; dispose: () => Promise<void> }> {
  const lib = await import("node-llama-cpp");
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({
    sequences: PARALLEL,
    contextSize: Math.min(CONTEXT, model.trainContextSize),
    threads: THREADS,
  });
  const free = Array.from({ length: PARALLEL }, () => context.getSequence());
  const wrapper = lib.resolveChatWrapper(model);
  const run: Direct = async (k) => {
    const sequence = free.pop()!;
    const chat = new lib.LlamaChat({ contextSequence: sequence, chatWrapper: wrapper, autoDisposeSequence: false });
    let tokens = 0;
    try {
      await chat.generateResponse(
        [
          { type: "user", text: prompt(k) },
          { type: "model", response: [] },
        ],
        { maxTokens: MAX_TOKENS, temperature: 0, onToken: (t) => (tokens += t.length) },
      );
      return tokens;
    } finally {
      chat.dispose();
      free.push(sequence);
    }
  };
  return { run, dispose: () => llama.dispose() };
}

async function main() {
  const dir = tempDir("bench-inference");
  const models = path.join(dir, "models");
  const file = writeModel(models, MODEL, { ...TINY_MODEL_PRESETS[PRESET], contextLength: CONTEXT });

  const nats = await startNats();
  const procs: Proc[] = [nats.proc];
  try {
    const node = startCli("node", {
      TRANSPORTER: nats.url,
      SERVICES: "inference",
      NODEID: "bench-node",
      LLM_NODE_MODELS_DIR: models,
      LLM_NODE_PARALLEL: String(PARALLEL),
      LLM_NODE_THREADS: String(THREADS),
      LLM_NODE_CONTEXT_SIZE: String(CONTEXT),
    });
    procs.push(node);
    const router = await startRouter("router", { TRANSPORTER: nats.url, SERVICES: "router", NODEID: "bench-router" });
    procs.push(router.proc);
    const headers = {
      "content-type": "application/json",
      authorization: `Bearer ${await createKey(router.url, { name: "bench" })}`,
    };
    await waitFor(
      async () => {
        const r = await fetch(`${router.url}/v1/models`, { headers });
        return ((await r.json()) as { data?: Array<{ id: string }> }).data?.some((m) => m.id === MODEL);
      },
      { timeoutMs: 120_000, what: `${MODEL} at the router` },
    );
    const viaRouter: Direct = async (k) => {
      const res = await fetch(`${router.url}/v1/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          model: MODEL,
          messages: [{ role: "user", content: prompt(k) }],
          max_tokens: MAX_TOKENS,
          temperature: 0,
        }),
      });
      if (res.status !== 200) throw new Error(`router: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
    };
    const direct = await directEngine(file);

    let k = 0;
    const tps = async (run: Direct, p: number) => {
      let tokens = 0;
      const t0 = performance.now();
      for (let b = 0; b < BATCHES; b++) {
        const base = k;
        k += p;
        const counts = await Promise.all(Array.from({ length: p }, (_, j) => run(base + j)));
        tokens += counts.reduce((a, c) => a + c, 0);
      }
      return { tps: tokens / ((performance.now() - t0) / 1000), tokens };
    };
    // warm-up: both paths, every level once
    for (const p of LEVELS) {
      await tps(direct.run, p);
      await tps(viaRouter, p);
    }
    const results = new Map(LEVELS.map((p) => [p, { direct: [] as number[], router: [] as number[], tokens: 0 }]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const p of LEVELS) {
        const r = results.get(p)!;
        const kk = k;
        // the same prompts both ways, so both generate the same tokens
        const first = round % 2 ? direct.run : viaRouter;
        const second = round % 2 ? viaRouter : direct.run;
        k = kk;
        const a = await tps(first, p);
        k = kk;
        const b = await tps(second, p);
        const [d, rt] = round % 2 ? [a, b] : [b, a];
        r.direct.push(d.tps);
        r.router.push(rt.tps);
        r.tokens = d.tokens;
        if (d.tokens !== rt.tokens)
          process.stderr.write(`warning: P=${p} direct ${d.tokens} tokens, router ${rt.tokens}\n`);
        process.stderr.write(
          `round ${round} P=${p}: direct ${d.tps.toFixed(0)} tok/s, router ${rt.tps.toFixed(0)} tok/s\n`,
        );
      }
    }
    await direct.dispose();

    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const lines = [
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}; load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")} at the end`,
      `Model: generated \`${PRESET}\` preset (${(await import("node:fs")).statSync(file).size >> 20} MiB), context ${CONTEXT}, ${PARALLEL} sequences, ${THREADS} thread(s), CPU; max_tokens ${MAX_TOKENS}, temperature 0; ${ROUNDS} rounds × ${BATCHES} batches per level.`,
      "",
      "| parallel requests | tokens per batch round | direct tok/s | via router tok/s | router / direct (paired) |",
      "| ---: | ---: | ---: | ---: | ---: |",
      ...LEVELS.map((p) => {
        const r = results.get(p)!;
        const ratio = med(r.router.map((v, i) => v / r.direct[i]));
        return `| ${p} | ${r.tokens} | ${med(r.direct).toFixed(0)} | ${med(r.router).toFixed(0)} | ${(ratio * 100).toFixed(1)} % |`;
      }),
    ];
    console.log(lines.join("\n"));
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
