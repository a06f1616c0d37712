/**
 * More models than memory: what loading on demand costs.
 *
 *   npm run bench:models        # ROUNDS=3 REQUESTS=120 CONCURRENCY=4, about 3 minutes
 *   PARTS=churn npm run bench:models   # only part 2 (`cold`: only part 1)
 *
 * Real node-llama-cpp on generated models (docs/tiny-gguf.md), a private
 * nats-server, one router (`SERVICES=router`) and inference nodes of their
 * own (1 thread each). Then:
 *
 * 1. Cold vs warm, per model size: the time from request to first streamed
 *    token of a model no node has loaded (the router has a node load it
 *    while the request waits: load included), against the same model
 *    loaded. ROUNDS times each: unload, one cold request, three warm ones.
 *    The history record's `load_ms` says how much of the cold time was the
 *    load.
 * 2. Eviction churn: REQUESTS chats from CONCURRENCY clients over five
 *    models with a skewed mix (40/25/15/10/10 %), on two nodes with room
 *    for two models each (`LLM_NODE_MAX_LOADED_MODELS=2`), against the same
 *    two nodes holding all five ("load everything", which fits here):
 *    loads and unloads, requests per second, latency p50/p99.
 */
import { routerClient, type RouterClient } from "../test/helpers/client";
import {
  createKey,
  login,
  startCli,
  startNats,
  startRouter,
  tempDir,
  writeModel,
  type Proc,
} from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { median, percentile } from "./lib";
import { TINY_MODEL_PRESETS, type TinyModelPreset } from "../lib/gguf/tiny-llama";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const REQUESTS = Number(process.env.REQUESTS ?? 120);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4);
const MIX = [0.4, 0.25, 0.15, 0.1, 0.1];

interface Cluster {
  user: RouterClient;
  admin: RouterClient;
  stop(): Promise<void>;
}

async function cluster(
  name: string,
  nodes: Array<{ id: string; dir: string; env?: Record<string, string> }>,
  expectModels: number,
): Promise<Cluster> {
  const nats = await startNats();
  const procs: Proc[] = nodes.map((n) =>
    startCli(n.id, {
      TRANSPORTER: nats.url,
      SERVICES: "inference",
      NODEID: n.id,
      LLM_NODE_MODELS_DIR: n.dir,
      LLM_NODE_PARALLEL: "2",
      LLM_NODE_CONTEXT_SIZE: "1024",
      LLM_NODE_HEARTBEAT_SECS: "2",
      LOGLEVEL: "warn",
      ...n.env,
    }),
  );
  const router = await startRouter("router", {
    TRANSPORTER: nats.url,
    SERVICES: "router",
    NODEID: `router-${name.replace(/[^a-z0-9-]/gi, "-")}`,
    LOGLEVEL: "info",
    LLM_ROUTER_QUEUE_TIMEOUT_SECS: "120",
  });
  const user = routerClient(router.url, { key: await createKey(router.url) });
  const admin = routerClient(router.url, { token: await login(router.url) });
  // online, and reachable over the transporter: every model of theirs listed
  const onAll = (m: { nodes: string[]; available_on?: string[] }) =>
    m.nodes.length + (m.available_on?.length ?? 0) === nodes.length;
  await waitFor(async () => (await user.models()).filter(onAll).length >= expectModels, {
    timeoutMs: 120_000,
    what: "the nodes' models listed",
  }).catch(async (err: Error) => {
    throw new Error(
      `${err.message}: ${JSON.stringify(await admin.nodes())} alive=${procs.map((p) => p.alive)}\n${procs.map((p) => p.output.slice(-1500)).join("\n")}`,
    );
  });
  return {
    user,
    admin,
    async stop() {
      await Promise.all([router.proc.stop(), ...procs.map((p) => p.stop())]);
      await nats.proc.stop();
    },
  };
}

/** A streamed chat: ms to the first content chunk, ms in all, and the history record's id. */
async function streamed(user: RouterClient, model: string): Promise<{ ttft: number; total: number; id: string }> {
  const t0 = performance.now();
  const res = await user.post("/v1/chat/completions", {
    model,
    max_tokens: 8,
    stream: true,
    messages: [{ role: "user", content: "hello" }],
  });
  if (res.status !== 200) throw new Error(`${model}: ${res.status} ${await res.text()}`);
  const reader = res.body!.getReader();
  let ttft = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!ttft && new TextDecoder().decode(value).includes('"content"')) ttft = performance.now() - t0;
  }
  return { ttft, total: performance.now() - t0, id: res.headers.get("x-request-id")! };
}

async function loadMsOf(admin: RouterClient, id: string): Promise<number | null> {
  const rec = await waitFor(async () => {
    const r = await admin.json("GET", `/api/dashboard/request-responses/${id}`);
    return r.status === 200 ? r.body : null;
  });
  return rec.load_ms ?? null;
}

async function coldVsWarm(): Promise<void> {
  const dir = tempDir("bench-models-sizes");
  const sizes = Object.keys(TINY_MODEL_PRESETS) as TinyModelPreset[];
  for (const size of sizes) writeModel(dir, `bench-${size}`, { ...TINY_MODEL_PRESETS[size], contextLength: 1024 });
  const c = await cluster(
    "sizes",
    [{ id: "node-sizes", dir, env: { LLM_NODE_LOAD_AT_START: "pinned" } }],
    sizes.length,
  );
  try {
    console.log("\n1. Time to first token, cold (load included) vs warm, ms (median of rounds)\n");
    console.log("| model | file | cold TTFT | of which load | warm TTFT |");
    console.log("| --- | ---: | ---: | ---: | ---: |");
    for (const size of sizes) {
      const model = `bench-${size}`;
      const cold: number[] = [];
      const load: number[] = [];
      const warm: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const files = (await c.admin.nodes())[0].model_files as Array<{
          id: string;
          state: string;
          size_bytes: number;
        }>;
        if (files.find((f) => f.id === model)?.state === "ready")
          await c.admin.json("POST", `/api/models/${model}/unload`, {});
        await waitFor(
          async () =>
            !(await c.user.models()).some((m: { id: string; nodes: string[] }) => m.id === model && m.nodes.length > 0),
        );
        const first = await streamed(c.user, model);
        cold.push(first.ttft);
        load.push((await loadMsOf(c.admin, first.id)) ?? 0);
        for (let i = 0; i < 3; i++) warm.push((await streamed(c.user, model)).ttft);
      }
      const file = ((await c.admin.nodes())[0].model_files as Array<{ id: string; size_bytes: number }>).find(
        (f) => f.id === model,
      )!;
      console.log(
        `| ${model} | ${(file.size_bytes / 2 ** 20).toFixed(1)} MiB | ${median(cold).toFixed(0)} | ${median(load).toFixed(0)} | ${median(warm).toFixed(1)} |`,
      );
    }
  } finally {
    await c.stop();
  }
}

/** REQUESTS chats over the five models in MIX from CONCURRENCY clients: what it took, and the loads it caused. */
async function churn(label: string, env: Record<string, string>): Promise<void> {
  const dir = tempDir("bench-models-five");
  const models = MIX.map((_, i) => `mix-${i + 1}`);
  for (const m of models) writeModel(dir, m, { ...TINY_MODEL_PRESETS.small, contextLength: 1024 });
  const c = await cluster(
    label,
    [
      { id: "node-1", dir, env },
      { id: "node-2", dir, env },
    ],
    models.length,
  );
  try {
    const loadsOf = async () => {
      let n = 0;
      for (const node of await c.admin.nodes()) for (const f of node.model_files ?? []) n += f.loads;
      return n;
    };
    const before = await loadsOf();
    // a fixed sequence (seeded), the same for both runs
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = () => {
      let x = rnd();
      for (let i = 0; i < MIX.length; i++) if ((x -= MIX[i]) < 0) return models[i];
      return models[MIX.length - 1];
    };
    const sequence = Array.from({ length: REQUESTS }, pick);
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < sequence.length) {
          const model = sequence[next++];
          latencies.push((await streamed(c.user, model)).total);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const loads = (await loadsOf()) - before;
    console.log(
      `| ${label} | ${loads} | ${(REQUESTS / secs).toFixed(1)} | ${percentile(latencies, 50).toFixed(0)} | ${percentile(latencies, 99).toFixed(0)} |`,
    );
  } finally {
    await c.stop();
  }
}

async function main(): Promise<void> {
  const parts = (process.env.PARTS ?? "cold,churn").split(",");
  if (parts.includes("cold")) await coldVsWarm();
  if (!parts.includes("churn")) return;
  console.log(
    `\n2. Eviction churn: ${REQUESTS} chats, ${CONCURRENCY} clients, mix ${MIX.join("/")} over 5 models on 2 nodes\n`,
  );
  console.log("| setting | loads during the run | requests/s | p50 ms | p99 ms |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  await churn("room for 2 per node", { LLM_NODE_MAX_LOADED_MODELS: "2", LLM_NODE_LOAD_AT_START: "pinned" });
  await churn("all 5 loaded", {});
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
