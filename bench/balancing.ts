/**
 * Balancing strategies on a mixed cluster: two fast simulated nodes and one
 * four times slower (the instant engine with a per-token delay and 4 slots
 * each), over a private NATS. For each strategy a fresh router takes an
 * open-loop load at a fixed rate (a share of the cluster's ideal throughput);
 * we record the throughput achieved and the latency percentiles.
 *
 *   npm run bench:balancing            # RATE_SHARE=0.8 SECONDS=10 TOKENS=50
 */
import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import { startCli, startNats, startRouter, tempDir, writeModel, type Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { percentile, post } from "./lib";

const TOKENS = Number(process.env.TOKENS ?? 50);
const SECONDS = Number(process.env.SECONDS ?? 10);
const RATE_SHARE = Number(process.env.RATE_SHARE ?? 0.8);
const PARALLEL = 4;
const NODES = [
  { id: "fast-1", msPerToken: 2 },
  { id: "fast-2", msPerToken: 2 },
  { id: "slow-1", msPerToken: 8 },
];
const STRATEGIES = (process.env.STRATEGIES ?? "auto,round_robin,least_busy,latency,random").split(",");
const MODEL = "sim";

/** Requests per second the cluster could finish if every slot were always busy. */
const ideal = NODES.reduce((a, n) => a + PARALLEL / ((TOKENS * n.msPerToken) / 1000), 0);

async function run(url: string, rate: number) {
  const body = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: TOKENS };
  const latencies: number[] = [];
  let failed = 0;
  const inflight: Promise<void>[] = [];
  const start = Date.now();
  let sent = 0;
  // open loop: send on schedule whatever the answers do
  while (Date.now() - start < SECONDS * 1000) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (sent < due) {
      sent++;
      inflight.push(
        post(`${url}/v1/chat/completions`, body).then(
          (t) => void latencies.push(t.total / 1000),
          () => void failed++,
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inflight);
  const elapsed = (Date.now() - start) / 1000;
  return {
    sent,
    failed,
    throughput: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

async function main() {
  const dir = tempDir("balancing");
  const models = path.join(dir, "models");
  writeModel(models, MODEL);
  const nats = await startNats();
  const procs: Proc[] = [nats.proc];
  const cluster = { TRANSPORTER: nats.url, LOGLEVEL: "warn", HEARTBEAT_INTERVAL: "1", LLM_NODE_HEARTBEAT_SECS: "1" };
  for (const n of NODES) {
    procs.push(
      startCli(n.id, {
        ...cluster,
        SERVICES: "inference",
        NODEID: n.id,
        LLM_NODE_MODELS_DIR: models,
        LLM_NODE_ENGINE: "instant",
        LLM_NODE_PARALLEL: String(PARALLEL),
        LLM_NODE_INSTANT_MS_PER_TOKEN: String(n.msPerToken),
      }),
    );
  }
  const rate = ideal * RATE_SHARE;
  const rows: string[] = [];
  try {
    for (const mode of STRATEGIES) {
      const router = await startRouter(`router-${mode}`, {
        ...cluster,
        LOGLEVEL: "info",
        SERVICES: "router",
        LLM_ROUTER_LOAD_BALANCER_MODE: mode,
        LLM_ROUTER_AUTH_DISABLED: "true",
      });
      try {
        await waitFor(
          async () => {
            const r = (await (await fetch(`${router.url}/v1/models`)).json()) as { data: Array<{ nodes: string[] }> };
            return r.data[0]?.nodes.length === NODES.length;
          },
          { timeoutMs: 60_000, what: "all simulated nodes" },
        );
        await run(router.url, rate / 2); // warm-up: JIT, connections, first latency samples
        const r = await run(router.url, rate);
        rows.push(
          `| ${mode} | ${r.throughput.toFixed(1)} | ${((r.throughput / ideal) * 100).toFixed(0)} % | ${r.p50.toFixed(0)} ms | ${r.p99.toFixed(0)} ms | ${r.failed} |`,
        );
        process.stderr.write(`${mode} done\n`);
      } finally {
        await router.proc.stop();
      }
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
  const out = [
    `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`,
    `Nodes: ${NODES.map((n) => `${n.id} ${n.msPerToken} ms/token`).join(", ")}; ${PARALLEL} slots each; ${TOKENS} tokens per request.`,
    `Ideal throughput ${ideal.toFixed(1)} req/s; offered load ${rate.toFixed(1)} req/s (open loop, ${SECONDS} s after a warm-up).`,
    "",
    "| strategy | req/s done | of ideal | p50 | p99 | failed |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
  console.log(out);
  if (process.env.OUT) fs.writeFileSync(process.env.OUT, out);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
