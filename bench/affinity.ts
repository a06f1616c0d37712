/**
 * `affinity` vs `auto` on time to first token (TTFT) in multi-turn
 * conversations, with real llama.cpp inference: two inference node processes
 * (a generated random-weight model, `small` preset), a private NATS, and for
 * each run a fresh router with the strategy under test. Several conversations
 * run at once; each turn sends the whole history (a long system prompt, the
 * earlier turns, a new user message) as a stream, and we time the first SSE
 * chunk with content. A node gives a conversation's next turn back the
 * sequence whose KV cache holds its beginning, so only the new tokens are
 * evaluated; that pays off only when the turn reaches the same node.
 *
 *   npm run bench:affinity     # CONVERSATIONS=8 TURNS=6 ROUNDS=2 SYSTEM_CHARS=1200 THINK_MS=1000
 */
import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import { createKey, startCli, startNats, tempDir, writeModel, type Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { percentile } from "./lib";
import { TINY_MODEL_PRESETS, type TinyModelPreset } from "../lib/gguf/tiny-llama";

const CONVERSATIONS = Number(process.env.CONVERSATIONS ?? 8);
const TURNS = Number(process.env.TURNS ?? 6);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const SYSTEM_CHARS = Number(process.env.SYSTEM_CHARS ?? 1200);
const USER_CHARS = Number(process.env.USER_CHARS ?? 100);
const MAX_TOKENS = Number(process.env.MAX_TOKENS ?? 8);
const THINK_MS = Number(process.env.THINK_MS ?? 1000);
const PARALLEL = Number(process.env.PARALLEL ?? 4);
const CONTEXT = Number(process.env.CONTEXT ?? 4096);
const PRESET = (process.env.PRESET ?? "small") as TinyModelPreset;
const STRATEGIES = (process.env.STRATEGIES ?? "auto,affinity").split(",");
const NODES = ["node-a", "node-b"];
const MODEL = "conv";

interface Message {
  role: "system" | "user" | "assistant";
  content: string;
}

interface Turn {
  conversation: number;
  turn: number;
  /** ms from sending to the first SSE chunk with content */
  ttft: number;
  node: string;
  /** the same node as this conversation's previous turn */
  sameNode: boolean;
}

/** mulberry32, seeded from a string: the same run label gives the same texts. */
function rng(label: string): () => number {
  let a = 0;
  for (const ch of label) a = (Math.imul(a, 31) + ch.charCodeAt(0)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  "the a node cache token model answer question router cluster request slot prefix history system user reply short long fast slow every other first next again please explain why how when where which about into over under with from".split(
    " ",
  );

/** Pseudo-English of about `chars` characters (one token per character with the tiny model's byte vocabulary). */
function text(rand: () => number, chars: number): string {
  const words: string[] = [];
  let n = 0;
  while (n < chars) {
    const w = WORDS[Math.floor(rand() * WORDS.length)];
    words.push(w);
    n += w.length + 1;
  }
  return words.join(" ");
}

/** Sends one streamed chat turn; resolves the TTFT, the whole answer and the node that served it. */
async function turn(
  url: string,
  key: string,
  messages: Message[],
): Promise<{ ttft: number; answer: string; node: string }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: MODEL, messages, stream: true, max_tokens: MAX_TOKENS, temperature: 0 }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  const node = res.headers.get("x-router-node") ?? "?";
  const decoder = new TextDecoder();
  let buf = "";
  let answer = "";
  let ttft: number | undefined;
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = event
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim())
        .join("\n");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string } }>; error?: unknown };
      if (chunk.error) throw new Error(`stream error: ${JSON.stringify(chunk.error)}`);
      const content = chunk.choices?.[0]?.delta?.content;
      if (content) {
        ttft ??= performance.now() - t0;
        answer += content;
      }
    }
  }
  if (ttft === undefined) throw new Error("the stream had no content");
  return { ttft, answer, node };
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** All conversations at once, each turn after the previous answer and a pause. */
async function run(url: string, key: string, label: string): Promise<{ turns: Turn[]; wallMs: number }> {
  const turns: Turn[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONVERSATIONS }, async (_, c) => {
      const rand = rng(`${label}/${c}`);
      const messages: Message[] = [
        { role: "system", content: `Conversation ${label}/${c}. ${text(rand, SYSTEM_CHARS)}` },
      ];
      let previous: string | undefined;
      for (let t = 1; t <= TURNS; t++) {
        // the user reads and types: conversations start spread over one pause, then pause ½–1½ × THINK_MS
        await sleep((t === 1 ? rand() : 0.5 + rand()) * THINK_MS);
        messages.push({ role: "user", content: text(rand, USER_CHARS) });
        const r = await turn(url, key, messages);
        turns.push({ conversation: c, turn: t, ttft: r.ttft, node: r.node, sameNode: r.node === previous });
        previous = r.node;
        messages.push({ role: "assistant", content: r.answer });
      }
    }),
  );
  return { turns, wallMs: performance.now() - start };
}

interface Result {
  label: string;
  strategy: string;
  turns: Turn[];
  wallMs: number;
}

function row(name: string, results: Result[]): string {
  const all = results.flatMap((r) => r.turns);
  const first = all.filter((t) => t.turn === 1).map((t) => t.ttft);
  const later = all.filter((t) => t.turn > 1);
  const ttft = later.map((t) => t.ttft);
  const same = later.filter((t) => t.sameNode).length;
  const wall = results.reduce((a, r) => a + r.wallMs, 0) / results.length / 1000;
  const byNode = NODES.map((n) => all.filter((t) => t.node === n).length).join(" / ");
  const ms = (v: number | undefined) => (v === undefined ? "–" : `${v.toFixed(0)} ms`);
  const p50Of = (ts: Turn[]) =>
    ms(
      percentile(
        ts.map((t) => t.ttft),
        50,
      ),
    );
  return `| ${name} | ${ms(percentile(ttft, 50))} | ${ms(percentile(ttft, 90))} | ${ms(percentile(first, 50))} | ${same}/${later.length} | ${p50Of(later.filter((t) => t.sameNode))} / ${p50Of(later.filter((t) => !t.sameNode))} | ${byNode} | ${wall.toFixed(1)} s |`;
}

const procs: Proc[] = [];

async function stopAll(): Promise<void> {
  for (const p of procs.splice(0).reverse()) await p.stop();
}

async function main() {
  const dir = tempDir("affinity");
  const models = path.join(dir, "models");
  writeModel(models, MODEL, { ...TINY_MODEL_PRESETS[PRESET], contextLength: CONTEXT });
  const nats = await startNats();
  procs.push(nats.proc);
  const cluster = { TRANSPORTER: nats.url, LOGLEVEL: "warn", HEARTBEAT_INTERVAL: "1", LLM_NODE_HEARTBEAT_SECS: "1" };
  for (const id of NODES) {
    procs.push(
      startCli(id, {
        ...cluster,
        SERVICES: "inference",
        NODEID: id,
        LLM_NODE_MODELS_DIR: models,
        LLM_NODE_PARALLEL: String(PARALLEL),
        LLM_NODE_CONTEXT_SIZE: String(CONTEXT),
      }),
    );
  }
  // ABBA...: every strategy runs once per round, the order flipping each round (drift and warm-up cancel out)
  const schedule: Array<{ strategy: string; round: number }> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? STRATEGIES : [...STRATEGIES].reverse();
    for (const strategy of order) schedule.push({ strategy, round });
  }
  const results: Result[] = [];
  let warmedUp = false;
  for (const { strategy, round } of schedule) {
    // started here rather than with startRouter, so that a router that never listens is stopped too
    const proc = startCli(`router-${strategy}-${round}`, {
      ...cluster,
      LOGLEVEL: "info",
      SERVICES: "router",
      LLM_ROUTER_LOAD_BALANCER_MODE: strategy,
    });
    procs.push(proc);
    try {
      const router = { url: (await proc.waitForOutput(/LLM Router listening on (http:\/\/\S+)/))[1] };
      const key = await createKey(router.url);
      await waitFor(
        async () => {
          const r = (await (
            await fetch(`${router.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })
          ).json()) as { data: Array<{ nodes: string[] }> };
          return r.data[0]?.nodes.length === NODES.length;
        },
        { timeoutMs: 90_000, what: "both inference nodes serving the model" },
      );
      if (!warmedUp) {
        // first requests on a node pay one-off costs (template, buffers): not part of any strategy's figures
        const label = "warm-up";
        const rand = rng(label);
        await Promise.all(
          Array.from({ length: 2 * NODES.length }, () =>
            turn(router.url, key, [{ role: "user", content: text(rand, 200) }]),
          ),
        );
        warmedUp = true;
      }
      const label = `${strategy}-${round}`;
      const r = await run(router.url, key, label);
      results.push({ label, strategy, ...r });
      process.stderr.write(`${label}: ${(r.wallMs / 1000).toFixed(1)} s\n`);
    } finally {
      await proc.stop();
      if (procs.includes(proc)) procs.splice(procs.indexOf(proc), 1);
    }
  }
  await stopAll();

  const header = [
    "| run | TTFT p50, turns ≥ 2 | TTFT p90, turns ≥ 2 | TTFT p50, turn 1 | same node as previous turn | TTFT p50 there / moved | turns per node (a / b) | wall time per run |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const out = [
    `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`,
    `Model: generated \`${PRESET}\` preset, context ${CONTEXT}; ${NODES.length} llama.cpp nodes, ${PARALLEL} slots and 1 thread each.`,
    `${CONVERSATIONS} concurrent conversations × ${TURNS} turns, system prompt ~${SYSTEM_CHARS} tokens, user messages ~${USER_CHARS} tokens, max_tokens ${MAX_TOKENS}, temperature 0, starts spread over ${THINK_MS} ms, pauses of ${THINK_MS / 2}–${(THINK_MS * 3) / 2} ms between turns; ${ROUNDS} rounds, order ${schedule.map((s) => s.strategy).join(", ")}.`,
    "",
    ...header,
    ...STRATEGIES.map((s) =>
      row(
        `**${s}** (all rounds)`,
        results.filter((r) => r.strategy === s),
      ),
    ),
    ...results.map((r) => row(r.label, [r])),
  ].join("\n");
  console.log(out);
  if (process.env.OUT) fs.writeFileSync(process.env.OUT, out);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(stopAll);
