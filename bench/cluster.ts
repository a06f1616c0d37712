/**
 * Routers as peers on PostgreSQL and NATS with JetStream: what history
 * through the stream costs a router, and throughput with 1, 2 and 3 routers.
 *
 *   npm run bench:cluster        # REQUESTS=4000 CONCURRENCY=16 ROUNDS=2, about 4 minutes
 *
 * Starts a private `nats-server -js`, a database of its own on the machine's
 * PostgreSQL (LLM_ROUTER_TEST_POSTGRES; dropped after), and one inference
 * node on the instant engine (answers at once: what is measured is the
 * router). Then:
 *
 * 1. Router CPU per request. One `SERVICES=router` process at a time, in
 *    three settings: history off, history on PostgreSQL through the JetStream
 *    stream (the default with a shared database and JetStream), and history
 *    on PostgreSQL written by the router itself (`LLM_ROUTER_HISTORY_STREAM=off`).
 *    Each takes REQUESTS non-streamed chat completions from CONCURRENCY
 *    clients after a warm-up; its CPU time (user + system, from
 *    /proc/<pid>/stat) over the run, divided by the requests, includes
 *    writing the records (its history writer pulls from the stream and
 *    inserts). The settings alternate, ROUNDS times; medians reported.
 * 2. Throughput with 1, 2 and 3 routers (history through the stream): the
 *    same clients spread round-robin over the first k routers.
 *
 * On one machine everything shares its cores (the node, NATS, PostgreSQL
 * and the client too): the CPU per request is the comparable figure; the
 * throughput says what the machine gives, not what k machines would.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createTestDatabase } from "../test/helpers/postgres";
import { createKey, startCli, startNats, startRouter, tempDir, type Proc } from "../test/helpers/procs";
import { routerClient } from "../test/helpers/client";
import { waitFor } from "../test/helpers/wait";
import { median, post } from "./lib";

const REQUESTS = Number(process.env.REQUESTS ?? 4000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const MODEL = "bench-instant";
const TICK_MS = 1000 / 100; // /proc times are in clock ticks of 10 ms (USER_HZ)

/** User + system CPU milliseconds of a process so far. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** `n` requests from CONCURRENCY clients, round-robin over `urls`: requests per second. */
async function drive(urls: string[], key: string, n: number): Promise<number> {
  let next = 0;
  const body = { model: MODEL, messages: [{ role: "user", content: "hello there" }], max_tokens: 8 };
  const headers = { authorization: `Bearer ${key}` };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        await post(`${urls[i % urls.length]}/v1/chat/completions`, body, headers);
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const pg = await createTestDatabase("llmr_cluster_bench");
  const nats = await startNats(undefined, { jetstream: true });
  const procs: Proc[] = [];
  const cluster = { TRANSPORTER: nats.url };
  const models = tempDir("cluster-bench-models");
  fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "instant engine: never loaded");
  const node = startCli("node", {
    ...cluster,
    SERVICES: "inference",
    NODEID: "bench-node",
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_NODE_PARALLEL: "64",
  });
  procs.push(node);

  const router = async (id: string, extra: Record<string, string>) => {
    const r = await startRouter(id, {
      ...cluster,
      SERVICES: "router",
      NODEID: id,
      LLM_ROUTER_DATABASE_URL: pg.url,
      ...extra,
    });
    procs.push(r.proc);
    return r;
  };
  const ready = async (url: string, key: string, routers: number) =>
    waitFor(
      async () =>
        (await routerClient(url).json("GET", "/health")).body.routers === routers &&
        (await routerClient(url, { key }).models()).some((m) => m.id === MODEL),
      { timeoutMs: 60_000, what: `${url} ready` },
    );

  try {
    // a key made once, in the shared database
    const first = await router("bench-setup", {});
    const key = await createKey(first.url);
    await first.proc.stop();

    const settings: Array<[string, Record<string, string>]> = [
      ["history off", { LLM_ROUTER_HISTORY_ENABLED: "false" }],
      ["history on PostgreSQL through JetStream", {}],
      ["history on PostgreSQL, written by the router", { LLM_ROUTER_HISTORY_STREAM: "off" }],
    ];
    const results = new Map<string, { cpuUs: number[]; rps: number[] }>(
      settings.map(([label]) => [label, { cpuUs: [], rps: [] }]),
    );
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, env] of settings) {
        const r = await router(`bench-router-${round}-${results.get(label)!.rps.length}`, env);
        await ready(r.url, key, 1);
        await drive([r.url], key, Math.min(500, REQUESTS));
        const pid = r.proc.child.pid!;
        const before = cpuMs(pid);
        const rps = await drive([r.url], key, REQUESTS);
        // the records of the run written (the stream drained), counted in the CPU
        await waitFor(
          async () => ((await routerClient(r.url).json("GET", "/health")).body.history?.waiting ?? 0) === 0,
          {
            timeoutMs: 60_000,
            what: "history written",
          },
        );
        const cpuUs = ((cpuMs(pid) - before) * 1000) / REQUESTS;
        results.get(label)!.cpuUs.push(cpuUs);
        results.get(label)!.rps.push(rps);
        process.stderr.write(
          `  round ${round + 1}: ${label}: ${Math.round(cpuUs)} µs CPU/request, ${Math.round(rps)} req/s\n`,
        );
        await r.proc.stop();
      }
    }

    const scale: Array<{ routers: number; rps: number }> = [];
    const peers = [];
    for (let k = 1; k <= 3; k++) peers.push(await router(`bench-peer-${k}`, {}));
    for (const p of peers) await ready(p.url, key, 3);
    for (let k = 1; k <= 3; k++) {
      const urls = peers.slice(0, k).map((p) => p.url);
      await drive(urls, key, Math.min(500, REQUESTS));
      scale.push({ routers: k, rps: await drive(urls, key, REQUESTS) });
    }

    const off = median(results.get(settings[0][0])!.cpuUs);
    console.log(
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; ` +
        `${REQUESTS} requests × ${ROUNDS} rounds, ${CONCURRENCY} clients, instant engine node\n`,
    );
    console.log("| one router                                     | CPU per request | vs history off | requests/s |");
    console.log("| ---------------------------------------------- | --------------: | -------------: | ---------: |");
    for (const [label] of settings) {
      const { cpuUs, rps } = results.get(label)!;
      const cpu = median(cpuUs);
      const ratio =
        label === settings[0][0] ? "—" : `${cpu >= off ? "+" : ""}${(((cpu - off) / off) * 100).toFixed(1)} %`;
      console.log(
        `| ${label.padEnd(46)} | ${`${Math.round(cpu)} µs`.padStart(15)} | ${ratio.padStart(14)} | ${String(Math.round(median(rps))).padStart(10)} |`,
      );
    }
    console.log("\n| routers (history through JetStream) | requests/s |");
    console.log("| ----------------------------------: | ---------: |");
    for (const s of scale)
      console.log(`| ${String(s.routers).padStart(35)} | ${String(Math.round(s.rps)).padStart(10)} |`);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await nats.proc.stop();
    await pg.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
