/**
 * The router with many nodes.
 *
 *   npm run bench:scale          # NODES=200 PROCS=4 IN_PROCESS=1000, about 1.5 minutes
 *   ONLY=strategies npm run bench:scale   # only each strategy's `select` alone, in process (seconds)
 *
 * 1. In this process, no transporter: the real balancer service beside a
 *    registry stand-in holding a node table of IN_PROCESS (1,000) and NODES
 *    heartbeats. Times the balancer's decision (`pick`: candidates from the
 *    table, the strategy, the slot reserved), `balancer.select` as the api
 *    calls it (a local Moleculer action call), and each strategy's `select`
 *    alone on the same candidates.
 * 2. Over a private nats-server: a router process (SERVICES=router) and NODES
 *    simulated nodes (bench/sim-nodes.ts: PROCS processes, NODES/PROCS brokers
 *    each, one NATS connection per broker, heartbeats of the real shape every
 *    10 s). Reports how long until the router lists every node as serving
 *    (from the spawn, and after the last broker started), the router's RSS
 *    before and after, and sequential chat latency through the router with
 *    all the nodes as candidates.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker, type Service } from "moleculer";
import { createStrategy, STRATEGY_NAMES } from "../lib/strategies";
import BalancerService from "../services/balancer.service";
import { routerCore } from "../lib/core/router-core";
import { createKey, startNats, startRouter, Proc, ROOT } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { fmt, median, percentile, post } from "./lib";
import { SIM_MODEL, simHeartbeat } from "./sim-nodes";

const NODES = Number(process.env.NODES ?? 200);
const PROCS = Number(process.env.PROCS ?? 4);
const IN_PROCESS = Number(process.env.IN_PROCESS ?? 1000);
const ITER = Number(process.env.ITER ?? 5000);
/** `strategies`: time only each strategy alone (no `pick`, no `balancer.select`, no cluster part). */
const ONLY = process.env.ONLY;
if (ONLY !== undefined && ONLY !== "strategies") throw new Error(`ONLY=${ONLY}: the one choice is ONLY=strategies`);

const us = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1000;
const stat = (xs: number[]) => `${median(xs).toFixed(1)} / ${percentile(xs, 99).toFixed(1)}`;

/** What the balancer needs of the registry: the core's table (filled by the bench) marked as kept. */
const RegistryStandIn = {
  name: "registry",
  created(this: Service) {
    routerCore(this.broker).registry = true;
  },
};

/** Decision times with `n` nodes in a table, in this process. */
async function inProcess(n: number): Promise<string[]> {
  const broker = new ServiceBroker({ nodeID: `bench-${n}`, logger: false, transporter: null });
  // simulated nodes: no inference endpoint to ask whether they can be reached
  const table = routerCore(broker, { reachable: () => true }).table;
  for (let i = 0; i < n; i++) table.upsert(simHeartbeat(`node-${String(i).padStart(4, "0")}`, i, i % 4));
  broker.createService(RegistryStandIn);
  broker.createService(BalancerService);
  await broker.start();
  const balancer = routerCore(broker).balancer!;
  const release = (nodeID: string) => balancer.finished({ nodeID, outcome: "other" });
  const timeIt = async (fn: () => unknown | Promise<unknown>) => {
    const xs: number[] = [];
    for (let k = 0; k < ITER + 500; k++) {
      const t0 = process.hrtime.bigint();
      const r = await fn();
      const t = us(t0);
      if (k >= 500) xs.push(t);
      if (r && typeof r === "object" && "nodeID" in r) release((r as { nodeID: string }).nodeID);
    }
    return xs;
  };
  const rows: string[] = [];
  if (ONLY !== "strategies") {
    const pick = await timeIt(() => balancer.select({ model: SIM_MODEL }));
    const select = await timeIt(() => broker.call("balancer.select", { model: SIM_MODEL }));
    rows.push(
      `| ${n} | balancer \`select\` as the api calls it (table → candidates → auto → slot reserved) | ${stat(pick)} |`,
      `| ${n} | \`balancer.select\` as an action call (the ops console, another process) | ${stat(select)} |`,
    );
  }
  const candidates = balancer.candidates(SIM_MODEL);
  for (const name of STRATEGY_NAMES) {
    const s = createStrategy(name);
    const req = { model: SIM_MODEL, affinityKey: name === "affinity" ? "conv-1" : undefined };
    const pool = s.seesFullNodes ? candidates : candidates.filter((c) => c.active < c.capacity);
    const xs = await timeIt(() => void s.select(pool, req));
    rows.push(`| ${n} | strategy \`${name}\` alone (${pool.length} candidates) | ${stat(xs)} |`);
  }
  await broker.stop();
  return rows;
}

const rssOf = (pid: number) => {
  const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
};

async function cluster(): Promise<string[]> {
  const nats = await startNats();
  const procs: Proc[] = [nats.proc];
  try {
    const router = await startRouter("router", { TRANSPORTER: nats.url, SERVICES: "router", NODEID: "bench-router" });
    procs.push(router.proc);
    const pid = router.proc.child.pid!;
    const headers = { authorization: `Bearer ${await createKey(router.url, { name: "bench" })}` };
    await new Promise((r) => setTimeout(r, 2000));
    const rssBefore = rssOf(pid);
    const serving = async () => {
      const r = await fetch(`${router.url}/v1/models`, { headers });
      const body = (await r.json()) as { data: Array<{ id: string; nodes: string[] }> };
      return body.data.find((m) => m.id === SIM_MODEL)?.nodes.length ?? 0;
    };

    const t0 = performance.now();
    const per = Math.ceil(NODES / PROCS);
    const sims: Proc[] = [];
    for (let p = 0; p < PROCS; p++) {
      const count = Math.min(per, NODES - p * per);
      const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "bench/sim-nodes.ts")], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          TRANSPORTER: nats.url,
          SIM_COUNT: String(count),
          SIM_PREFIX: `sim-${p}`,
          SIM_OFFSET: String(p * per),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      sims.push(new Proc(`sim-${p}`, child));
    }
    procs.push(...sims);
    let lastReady = 0;
    await Promise.all(
      sims.map(async (s) => {
        await s.waitForOutput(/READY/, 180_000);
        lastReady = Math.max(lastReady, performance.now());
      }),
    );
    let seen = 0;
    await waitFor(async () => (seen = await serving()) >= NODES, {
      timeoutMs: 180_000,
      intervalMs: 100,
      what: `${NODES} serving nodes (seen ${seen})`,
    });
    const allSeen = performance.now();
    const rssSeen = rssOf(pid);
    // sequential chat through the router, every node a candidate
    const lat: number[] = [];
    const body = { model: SIM_MODEL, messages: [{ role: "user", content: "Say hello." }], max_tokens: 16 };
    for (let k = 0; k < 1100; k++) {
      const r = await post(`${router.url}/v1/chat/completions`, body, headers);
      if (k >= 100) lat.push(r.total);
    }
    await new Promise((r) => setTimeout(r, 15_000));
    const rssLater = rssOf(pid);
    return [
      `| nodes serving at the router | ${seen} (${PROCS} processes of ${per} brokers) |`,
      `| spawn → every broker started | ${fmt((lastReady - t0) * 1000)} |`,
      `| spawn → router lists all as serving | ${fmt((allSeen - t0) * 1000)} |`,
      `| last broker started → router lists all | ${fmt(Math.max(0, allSeen - lastReady) * 1000)} |`,
      `| router RSS: no nodes / all seen / +15 s of heartbeats and 1,100 requests | ${rssBefore.toFixed(0)} / ${rssSeen.toFixed(0)} / ${rssLater.toFixed(0)} MiB |`,
      `| chat through the router, sequential (after 100 warm-up): p50 / p99 | ${fmt(median(lat))} / ${fmt(percentile(lat, 99))} |`,
    ];
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
}

async function main() {
  const header = `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}`;
  const decision = [
    "| nodes | what is timed | p50 / p99 µs |",
    "| ---: | --- | ---: |",
    ...(await inProcess(NODES)),
    ...(await inProcess(IN_PROCESS)),
  ];
  console.log(
    [header, "", `In-process decision times, ${ITER} calls each after 500 warm-up:`, "", ...decision].join("\n"),
  );
  if (process.env.CLUSTER === "0" || ONLY === "strategies") return;
  const rows = await cluster();
  console.log(["", `Over NATS, ${NODES} simulated nodes:`, "", "| | |", "| --- | --- |", ...rows].join("\n"));
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
