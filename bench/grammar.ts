/**
 * Grammar-constrained generation against free generation, on the same model:
 * tokens/s of a `response_format: json_schema` answer and of a forced tool
 * call vs a plain answer, node-llama-cpp driven directly in this process and
 * through the router (HTTP → api → NATS → node); then what compiling a
 * grammar costs per schema, uncached vs from the node's cache.
 *
 *   npm run bench:grammar        # PRESET=medium ROUNDS=3, about 3 minutes
 *
 * One request at a time, temperature 0 (the same tokens both ways). A JSON
 * answer ends by its grammar (every string is bounded); the plain answer is
 * given the same number of tokens as max_tokens. Each measured request comes
 * right after the same one, so its prompt is in the KV cache and the time is
 * generation's (a tool's prompt documents it: ~1,000 tokens). Per round, each kind runs
 * directly and through the router; the table shows medians, and each
 * constrained kind's tokens/s as a share of the plain one's on the same path.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Llama, LlamaChat, LlamaGrammar } from "node-llama-cpp" with { "resolution-mode": "import" };
import { TINY_MODEL_PRESETS, type TinyModelPreset } from "../lib/gguf/tiny-llama";
import { chatHistory } from "../lib/inference/chat-history";
import { forcedCallWrapper, GrammarCache, tightenNumberGrammar } from "../lib/inference/llama-tools";
import { grammarSchema } from "../lib/openai/json-schema";
import { createKey, startCli, startNats, startRouter, tempDir, writeModel, type Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";

const PRESET = (process.env.PRESET ?? "medium") as TinyModelPreset;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONTEXT = 4096;
const MODEL = `bench-grammar-${PRESET}`;

const SCHEMA = {
  type: "object",
  properties: {
    title: { type: "string", maxLength: 40 },
    year: { type: "integer" },
    tags: { type: "array", items: { type: "string", maxLength: 12 }, minItems: 4, maxItems: 4 },
    rating: { enum: ["good", "bad"] },
  },
  required: ["title", "year", "tags", "rating"],
  additionalProperties: false,
};
const TOOL = { name: "save_record", description: "Saves a record", parameters: SCHEMA };
const MESSAGES = [{ role: "user" as const, content: "Describe a film as a record." }];

/** plain: free text; json: response_format; auto: free text with the tool documented (tool's prompt); tool: a forced call. */
type Kind = "plain" | "json" | "auto" | "tool";
type Run = (kind: Kind, maxTokens: number) => Promise<number>;

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** node-llama-cpp here, set up as the node's engine sets it up (same wrapper, grammar fix, forced calls). */
async function direct(file: string) {
  await tightenNumberGrammar();
  const lib = await import("node-llama-cpp");
  const llama: Llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({ sequences: 1, contextSize: CONTEXT, threads: 1 });
  const sequence = context.getSequence();
  const wrapper = lib.resolveChatWrapper(model);
  const schema = grammarSchema(SCHEMA, "schema");
  const grammar: LlamaGrammar = await llama.createGrammarForJsonSchema(schema as never);
  const run: Run = async (kind, maxTokens) => {
    const chat: LlamaChat = new lib.LlamaChat({
      contextSequence: sequence,
      chatWrapper: kind === "tool" ? forcedCallWrapper(lib, wrapper) : wrapper,
      autoDisposeSequence: false,
    });
    let tokens = 0;
    try {
      const history = chatHistory(MESSAGES);
      const common = { maxTokens, temperature: 0, onToken: (t: unknown[]) => (tokens += t.length) };
      if (kind === "tool" || kind === "auto") {
        const res = await chat.generateResponse(history, {
          ...common,
          functions: { [TOOL.name]: { description: TOOL.description, params: schema as never } },
          documentFunctionParams: true,
        });
        // as the engine counts them: onToken does not see a call's tokens
        for (const c of res.functionCalls ?? [])
          tokens += lib.LlamaText.fromJSON(c.raw).tokenize(model.tokenizer).length;
      } else {
        await chat.generateResponse(history, { ...common, grammar: kind === "json" ? grammar : undefined });
      }
      return tokens;
    } finally {
      chat.dispose();
    }
  };
  return { llama, run, dispose: () => llama.dispose() };
}

/** Compile time of a schema's grammar: a fresh compile each time vs the node's cache. */
async function compileTimes(llama: Llama) {
  const props = (n: number) =>
    Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`p${i}`, i % 3 ? { type: "string", maxLength: 20 } : { type: "integer" }]),
    );
  const nested = (depth: number): Record<string, unknown> =>
    depth === 0
      ? { type: "object", properties: props(8) }
      : {
          type: "object",
          properties: { ...props(6), child: nested(depth - 1), list: { type: "array", items: nested(0), maxItems: 3 } },
        };
  const schemas: Array<[string, Record<string, unknown>]> = [
    ["small (3 properties)", SCHEMA],
    ["wide (200 properties)", { type: "object", properties: props(200) }],
    ["deep (8 levels, arrays of objects)", nested(8)],
  ];
  const rows: string[] = [];
  for (const [name, raw] of schemas) {
    const schema = grammarSchema(raw, "schema");
    const fresh: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await llama.createGrammarForJsonSchema(schema as never);
      fresh.push(performance.now() - t0);
    }
    const cache = new GrammarCache(llama);
    const job = { responseFormat: { type: "json_schema", name: "x", schema } } as never;
    await cache.forJob(job);
    const cached: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      await cache.forJob(job);
      cached.push(performance.now() - t0);
    }
    rows.push(
      `| ${name} | ${JSON.stringify(raw).length} | ${med(fresh).toFixed(1)} ms | ${(med(cached) * 1000).toFixed(0)} µs |`,
    );
  }
  return rows;
}

async function main() {
  const dir = tempDir("bench-grammar");
  const models = path.join(dir, "models");
  const file = writeModel(models, MODEL, { ...TINY_MODEL_PRESETS[PRESET], contextLength: CONTEXT });
  const nats = await startNats();
  const procs: Proc[] = [nats.proc];
  try {
    procs.push(
      startCli("node", {
        TRANSPORTER: nats.url,
        SERVICES: "inference",
        NODEID: "bench-node",
        LLM_NODE_MODELS_DIR: models,
        LLM_NODE_PARALLEL: "1",
        LLM_NODE_THREADS: "1",
        LLM_NODE_CONTEXT_SIZE: String(CONTEXT),
      }),
    );
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
    const viaRouter: Run = async (kind, maxTokens) => {
      const body: Record<string, unknown> = { model: MODEL, messages: MESSAGES, max_tokens: maxTokens, temperature: 0 };
      if (kind === "json")
        body.response_format = { type: "json_schema", json_schema: { name: "record", schema: SCHEMA } };
      if (kind === "tool" || kind === "auto") {
        body.tools = [{ type: "function", function: TOOL }];
        body.tool_choice = kind === "tool" ? "required" : "auto";
      }
      const res = await fetch(`${router.url}/v1/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
      if (res.status !== 200) throw new Error(`router: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
    };
    const local = await direct(file);
    const paths: Array<[string, Run]> = [
      ["direct", local.run],
      ["router", viaRouter],
    ];
    const kinds: Kind[] = ["plain", "json", "auto", "tool"];
    // warm-up, and how many tokens the JSON answer takes: the plain one gets as many
    const jsonTokens = await local.run("json", 1000);
    await local.run("tool", 1000);
    for (const k of kinds) await viaRouter(k, jsonTokens);
    const tps = new Map<string, number[]>();
    const tokens = new Map<string, number>();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, run] of round % 2 ? paths : [...paths].reverse()) {
        for (const kind of kinds) {
          const max = kind === "plain" || kind === "auto" ? jsonTokens : 1000;
          // once unmeasured: the prompt is then in the sequence's KV cache, and the measured run times generation
          await run(kind, max);
          const t0 = performance.now();
          const n = await run(kind, max);
          const rate = n / ((performance.now() - t0) / 1000);
          tps.set(`${name}/${kind}`, [...(tps.get(`${name}/${kind}`) ?? []), rate]);
          tokens.set(`${name}/${kind}`, n);
        }
      }
      process.stderr.write(`round ${round}/${ROUNDS}\n`);
    }
    const compile = await compileTimes(local.llama);
    await local.dispose();

    const cell = (p: string, k: Kind) => med(tps.get(`${p}/${k}`)!);
    const lines = [
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}`,
      `Model: generated \`${PRESET}\` preset (${fs.statSync(file).size >> 20} MiB), context ${CONTEXT}, 1 sequence, 1 thread, CPU; temperature 0; ${ROUNDS} rounds; medians.`,
      "",
      "| answer | tokens | direct tok/s | vs free text, same prompt | via router tok/s | vs free text, same prompt |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      ...kinds.map((k) => {
        // a forced call's prompt documents the tool: compared with free text after the same prompt
        const base: Kind = k === "tool" || k === "auto" ? "auto" : "plain";
        const share = (p: string) => `${((cell(p, k) / cell(p, base)) * 100).toFixed(0)} %`;
        return `| ${k} | ${tokens.get(`direct/${k}`)} | ${cell("direct", k).toFixed(0)} | ${share("direct")} | ${cell("router", k).toFixed(0)} | ${share("router")} |`;
      }),
      "",
      "| schema | JSON chars | compile, uncached | from the cache |",
      "| --- | ---: | ---: | ---: |",
      ...compile,
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
