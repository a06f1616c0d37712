/**
 * Added latency of the router over calling the same inference directly.
 *
 *   npm run bench                         # ROUNDS=5 N=100 by default
 *
 * Starts a private nats-server, one inference node process and one router
 * process (SERVICES=router) talking over NATS, plus the same model loaded with
 * node-llama-cpp in this process. In interleaved rounds it measures:
 *   A. a short non-streamed chat: through the router (HTTP → api → NATS →
 *      node → llama.cpp) vs the same job run on the engine in this process;
 *   B. time to first token of a streamed chat, the same two ways;
 *   C. the framework alone: a second node with the simulated instant engine
 *      (LLM_NODE_ENGINE=instant) through the router vs a bare node:http server
 *      in another process answering a same-sized body.
 *   D. the transporter alone: a Moleculer broker in this process calling
 *      `inference.chat` on the instant node over NATS (no HTTP, no router) vs
 *      the bare HTTP server, so C − D is what the router's HTTP side costs.
 * Each figure is the median over rounds of that round's median; "added" is
 * paired per round (router minus direct in the same round).
 */
import { spawn } from "node:child_process";
import { ServiceBroker } from "moleculer";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LlamaEngine } from "../lib/inference/llama-engine";
import type { ChatJob } from "../lib/inference/types";
import { startCli, startNats, startRouter, tempDir, writeModel, Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { fmt, median, percentile, post } from "./lib";

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const N = Number(process.env.N ?? 100);
const MAX_TOKENS = 8;
const MODEL = "bench-tiny";
const FAST = "bench-instant";

interface Row {
  name: string;
  direct: number[];
  router: number[];
  routerP99: number[];
}

async function timeDirect(engine: LlamaEngine, stream: boolean): Promise<number> {
  const job: ChatJob = {
    requestId: `d-${Math.random()}`,
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    maxTokens: MAX_TOKENS,
    temperature: 0,
    stop: [],
    stream,
    includeUsage: false,
    created: 0,
  };
  const t0 = process.hrtime.bigint();
  let first: number | undefined;
  await engine.chat(job, {
    signal: new AbortController().signal,
    onText: stream ? () => (first ??= Number(process.hrtime.bigint() - t0) / 1000) : undefined,
  });
  return stream ? first! : Number(process.hrtime.bigint() - t0) / 1000;
}

async function main() {
  const dir = tempDir("bench");
  const models = path.join(dir, "models");
  const fastModels = path.join(dir, "fast");
  writeModel(models, MODEL);
  writeModel(fastModels, FAST);

  const nats = await startNats();
  const cluster = { TRANSPORTER: nats.url, LOGLEVEL: "warn" };
  const procs: Proc[] = [nats.proc];
  const node = startCli("node", {
    ...cluster,
    SERVICES: "inference",
    NODEID: "bench-node",
    LLM_NODE_MODELS_DIR: models,
  });
  const fastNode = startCli("fast-node", {
    ...cluster,
    SERVICES: "inference",
    NODEID: "bench-instant-node",
    LLM_NODE_MODELS_DIR: fastModels,
    LLM_NODE_ENGINE: "instant",
  });
  const router = await startRouter("router", {
    ...cluster,
    LOGLEVEL: "info",
    SERVICES: "router",
    NODEID: "bench-router",
  });
  procs.push(node, fastNode, router.proc);

  // a bare HTTP server answering a chat.completion of the same size, in its own process
  const bareBody = JSON.stringify({
    id: "chatcmpl-00000000000000000000000000000000",
    object: "chat.completion",
    created: 0,
    model: FAST,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "x".repeat(MAX_TOKENS) },
        logprobs: null,
        finish_reason: "length",
      },
    ],
    usage: { prompt_tokens: 8, completion_tokens: MAX_TOKENS, total_tokens: 16 },
  });
  const bareScript = `require("http").createServer((q,s)=>{q.resume();q.on("end",()=>{s.writeHead(200,{"content-type":"application/json"});s.end(${JSON.stringify(bareBody)})})}).listen(0,"127.0.0.1",function(){console.log("PORT "+this.address().port)})`;
  const bare = new Proc(
    "bare-http",
    spawn(process.execPath, ["-e", bareScript], { stdio: ["ignore", "pipe", "pipe"] }),
  );
  procs.push(bare);
  const barePort = (await bare.waitForOutput(/PORT (\d+)/))[1];

  try {
    await waitFor(
      async () => {
        const r = (await (await fetch(`${router.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
        return r.data.length === 2;
      },
      { timeoutMs: 60_000, what: "both bench nodes" },
    );
    const engine = await LlamaEngine.create({
      modelsDir: models,
      parallel: 4,
      threads: 1,
      contextSize: 4096,
      gpu: false,
    });
    const chatBody = (model: string, stream: boolean) => ({
      model,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: MAX_TOKENS,
      temperature: 0,
      stream,
    });
    const url = `${router.url}/v1/chat/completions`;

    const rows: Row[] = [
      { name: `A. chat, ${MAX_TOKENS} tokens, not streamed (llama.cpp)`, direct: [], router: [], routerP99: [] },
      { name: "B. time to first token, streamed (llama.cpp)", direct: [], router: [], routerP99: [] },
      { name: "C. framework only: instant engine vs bare HTTP", direct: [], router: [], routerP99: [] },
      { name: "D. NATS call only (Moleculer, no HTTP) vs bare HTTP", direct: [], router: [], routerP99: [] },
    ];
    const caller = new ServiceBroker({
      namespace: "llm-router",
      nodeID: "bench-caller",
      transporter: { type: "NATS", options: { url: nats.url } },
      logger: false,
    });
    await caller.start();
    await waitFor(
      () => caller.registry.getActionEndpointByNodeId("inference.chat", "bench-instant-node")?.isAvailable,
      {
        what: "the instant node from the bench broker",
      },
    );
    let seq = 0;
    const natsJob = (): ChatJob => ({
      requestId: `nats-${seq++}`,
      model: FAST,
      messages: [{ role: "user", content: "hi" }],
      maxTokens: MAX_TOKENS,
      stop: [],
      stream: false,
      includeUsage: false,
      created: 0,
    });
    const measure = async (fn: () => Promise<number>) => {
      for (let i = 0; i < 20; i++) await fn(); // warm-up
      const xs: number[] = [];
      for (let i = 0; i < N; i++) xs.push(await fn());
      return xs;
    };
    const record = (row: Row, direct: number[], routed: number[]) => {
      row.direct.push(median(direct));
      row.router.push(median(routed));
      row.routerP99.push(percentile(routed, 99));
    };

    for (let round = 1; round <= ROUNDS; round++) {
      record(
        rows[0],
        await measure(() => timeDirect(engine, false)),
        await measure(async () => (await post(url, chatBody(MODEL, false))).total),
      );
      record(
        rows[1],
        await measure(() => timeDirect(engine, true)),
        await measure(async () => (await post(url, chatBody(MODEL, true))).firstContent!),
      );
      record(
        rows[2],
        await measure(
          async () => (await post(`http://127.0.0.1:${barePort}/v1/chat/completions`, chatBody(FAST, false))).total,
        ),
        await measure(async () => (await post(url, chatBody(FAST, false))).total),
      );
      record(
        rows[3],
        await measure(
          async () => (await post(`http://127.0.0.1:${barePort}/v1/chat/completions`, chatBody(FAST, false))).total,
        ),
        await measure(async () => {
          const t0 = process.hrtime.bigint();
          await caller.call("inference.chat", natsJob(), { nodeID: "bench-instant-node" });
          return Number(process.hrtime.bigint() - t0) / 1000;
        }),
      );
      process.stderr.write(`round ${round}/${ROUNDS} done\n`);
    }
    await engine.dispose();
    await caller.stop();

    const lines = [
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`,
      `${ROUNDS} rounds × ${N} sequential requests (after 20 warm-up), one keep-alive connection; medians over rounds.`,
      "",
      "| measurement | direct p50 | via router p50 | router p99 | added p50 (paired) | ratio |",
      "| --- | --- | --- | --- | --- | --- |",
      ...rows.map((r) => {
        const added = median(r.router.map((v, i) => v - r.direct[i]));
        const ratio = median(r.router.map((v, i) => v / r.direct[i]));
        return `| ${r.name} | ${fmt(median(r.direct))} | ${fmt(median(r.router))} | ${fmt(median(r.routerP99))} | ${fmt(added)} | ${ratio.toFixed(2)}× |`;
      }),
    ];
    console.log(lines.join("\n"));
    if (process.env.OUT) fs.writeFileSync(process.env.OUT, JSON.stringify({ rounds: ROUNDS, n: N, rows }, null, 2));
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
