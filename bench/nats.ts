/**
 * What NATS costs the router: the same router and simulated inference node
 * (LLM_NODE_ENGINE=instant, LLM_NODE_INSTANT_MS_PER_TOKEN=0) once as two
 * processes over a private nats-server and once as one process with no
 * transporter, side by side, next to a bare node:http server as the floor.
 *
 *   npm run bench:nats                  # ROUNDS=5 N=500 by default, about 1.5 minutes
 *
 * Both routers have auth on (an API key per request) and history on (the
 * embedded store in a temp dir). Per round, for each target: N sequential
 * non-streamed chat requests (16 tokens) on one keep-alive connection after a
 * warm-up, then N/5 streamed ones timed to the first chunk with content.
 * "added by NATS" is paired per round: over-NATS minus in-process, then the
 * median over rounds. OUT=file.json keeps the per-round figures.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createKey, startCli, startNats, startRouter, tempDir, writeModel, Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { fmt, median, percentile, post } from "./lib";

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const N = Number(process.env.N ?? 500);
const WARMUP = 100;
const MODEL = "bench-instant";
const TOKENS = 16;

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  stream: boolean;
  seq: { p50: number[]; p99: number[] };
  ttfc: { p50: number[]; p99: number[] };
}

const body = (stream: boolean) => ({
  model: MODEL,
  messages: [{ role: "user", content: "Say hello." }],
  max_tokens: TOKENS,
  stream,
});

async function measure(t: Target, stream: boolean, n: number): Promise<number[]> {
  const url = `${t.url}/v1/chat/completions`;
  const one = async () => {
    const r = await post(url, body(stream), t.headers);
    return stream ? r.firstContent! : r.total;
  };
  for (let i = 0; i < Math.min(WARMUP, n); i++) await one();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await one());
  return xs;
}

async function main() {
  const dir = tempDir("bench-nats");
  const models = path.join(dir, "models");
  writeModel(models, MODEL);
  const instant = { LLM_NODE_ENGINE: "instant", LLM_NODE_INSTANT_MS_PER_TOKEN: "0", LLM_NODE_MODELS_DIR: models };

  const nats = await startNats();
  const procs: Proc[] = [nats.proc];
  try {
    const node = startCli("node", {
      ...instant,
      TRANSPORTER: nats.url,
      SERVICES: "inference",
      NODEID: "bench-node",
      LOGLEVEL: "warn",
    });
    procs.push(node);
    const clustered = await startRouter("router-nats", {
      TRANSPORTER: nats.url,
      SERVICES: "router",
      NODEID: "bench-router",
      LOGLEVEL: "info", // the "listening" line is info
    });
    procs.push(clustered.proc);
    // everything in one process: router services and the inference service, no transporter
    const embedded = await startRouter("router-embedded", {
      ...instant,
      SERVICES: "router,inference",
      NODEID: "bench-embedded",
      LOGLEVEL: "info",
    });
    procs.push(embedded.proc);
    const bareScript = `const b=JSON.stringify({id:"chatcmpl-0",object:"chat.completion",created:0,model:"${MODEL}",choices:[{index:0,message:{role:"assistant",content:"${"x".repeat(TOKENS)}"},logprobs:null,finish_reason:"length"}],usage:{prompt_tokens:3,completion_tokens:${TOKENS},total_tokens:${TOKENS + 3}}});require("http").createServer((q,s)=>{q.resume();q.on("end",()=>{s.writeHead(200,{"content-type":"application/json"});s.end(b)})}).listen(0,"127.0.0.1",function(){console.log("PORT "+this.address().port)})`;
    const bare = new Proc(
      "bare-http",
      spawn(process.execPath, ["-e", bareScript], { stdio: ["ignore", "pipe", "pipe"] }),
    );
    procs.push(bare);
    const barePort = (await bare.waitForOutput(/PORT (\d+)/))[1];

    const keyOf = async (url: string) => ({ authorization: `Bearer ${await createKey(url, { name: "bench" })}` });
    const targets: Target[] = [
      { name: "bare node:http (floor)", url: `http://127.0.0.1:${barePort}`, headers: {}, stream: false },
      { name: "router, in one process", url: embedded.url, headers: await keyOf(embedded.url), stream: true },
      { name: "router + node over NATS", url: clustered.url, headers: await keyOf(clustered.url), stream: true },
    ].map((t) => ({ ...t, seq: { p50: [], p99: [] }, ttfc: { p50: [], p99: [] } }));
    for (const t of targets.slice(1)) {
      await waitFor(
        async () => {
          const r = await fetch(`${t.url}/v1/models`, { headers: t.headers });
          return ((await r.json()) as { data?: Array<{ id: string }> }).data?.some((m) => m.id === MODEL);
        },
        { timeoutMs: 60_000, what: `${MODEL} at ${t.name}` },
      );
    }

    for (let round = 1; round <= ROUNDS; round++) {
      // the order flips each round, so neither side always runs right after the other
      const order = round % 2 ? targets : [targets[0], targets[2], targets[1]];
      for (const t of order) {
        const xs = await measure(t, false, N);
        t.seq.p50.push(median(xs));
        t.seq.p99.push(percentile(xs, 99));
        if (!t.stream) continue;
        const ys = await measure(t, true, Math.ceil(N / 5));
        t.ttfc.p50.push(median(ys));
        t.ttfc.p99.push(percentile(ys, 99));
      }
      const brief = targets.map((t) => `${t.name}: ${fmt(t.seq.p50.at(-1)!)}`).join(", ");
      process.stderr.write(`round ${round}/${ROUNDS}: ${brief}\n`);
    }

    const [floor, inproc, overNats] = targets;
    const paired = (a: number[], b: number[]) => median(a.map((v, i) => v - b[i]));
    const lines = [
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}; load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")} at the end`,
      `${ROUNDS} rounds × ${N} sequential requests (${TOKENS} tokens, after ${WARMUP} warm-up), one keep-alive connection; streamed: ${Math.ceil(N / 5)} per round. Medians over rounds.`,
      "",
      "| target | p50 | p99 | over floor p50 (paired) | stream TTFC p50 | TTFC p99 |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      ...targets.map(
        (t) =>
          `| ${t.name} | ${fmt(median(t.seq.p50))} | ${fmt(median(t.seq.p99))} | ${t === floor ? "–" : fmt(paired(t.seq.p50, floor.seq.p50))} | ${t.stream ? fmt(median(t.ttfc.p50)) : "–"} | ${t.stream ? fmt(median(t.ttfc.p99)) : "–"} |`,
      ),
      "",
      `**Added by NATS** (over NATS minus in one process, paired per round): p50 ${fmt(paired(overNats.seq.p50, inproc.seq.p50))}, stream TTFC p50 ${fmt(paired(overNats.ttfc.p50, inproc.ttfc.p50))}; per round: ${overNats.seq.p50.map((v, i) => fmt(v - inproc.seq.p50[i])).join(" / ")}.`,
    ];
    console.log(lines.join("\n"));
    if (process.env.OUT) fs.writeFileSync(process.env.OUT, JSON.stringify({ rounds: ROUNDS, n: N, targets }, null, 2));
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
