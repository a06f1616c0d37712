/**
 * The in-process tier: the router's api, registry and balancer and real
 * inference services (the instant engine) in one process, as separate brokers
 * on Moleculer's in-memory transporter; real HTTP to the api. It covers the
 * request path (lib/upstreams/, services/api/inference.ts) without spawning
 * a process: retries on another node, for chat and embeddings; the stop of a
 * generation when its client leaves; the wait queue.
 */
import fs from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { apiError } from "../../lib/openai/errors";
import { routerCore } from "../../lib/core/router-core";
import type { Heartbeat } from "../../lib/cluster/types";
import { routerClient, type RouterClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";

const MODEL = "inproc-model";
/** Served by the real node only. */
const SOLO = "inproc-solo";
const saved = { ...process.env };
const brokers: ServiceBroker[] = [];
const dirs: string[] = [];
/** The api (no credential: auth is off here). */
let api: RouterClient;
let router: ServiceBroker;
/** What the failing stand-in node was asked. */
const failing = { chats: 0, embeddings: 0 };

function broker(nodeID: string): ServiceBroker {
  const b = new ServiceBroker({ nodeID, namespace: "inproc", transporter: "Fake", logger: false });
  brokers.push(b);
  return b;
}

function modelsDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inproc-models-"));
  dirs.push(dir);
  // the instant engine serves every .gguf name without reading the file
  for (const id of [MODEL, SOLO]) fs.writeFileSync(path.join(dir, `${id}.gguf`), "");
  return dir;
}

/** Services read their configuration when they are created: the environment for the next ones. */
function env(vars: Record<string, string>): void {
  Object.assign(process.env, vars);
}

/** A node that reports the model like any other and fails every request with a 500. */
function failingNode(): ServiceSchema {
  const beat = (b: ServiceBroker): Heartbeat => ({
    nodeID: b.nodeID,
    machineName: "failing-box",
    engine: "stand-in",
    initializing: false,
    models: [{ id: MODEL, contextSize: 4096, parallel: 4, sizeBytes: 0, active: 0, queued: 0 }],
    active: 0,
    queued: 0,
    capacity: 4,
    cpu: { usage: 0, cores: 1 },
    memory: { used: 0, total: 1 },
    gpuBackend: false,
    gpus: [],
    tokensPerSecond: 0,
    sentAt: Date.now(),
  });
  const fail = () => {
    throw apiError(500, "the engine broke", "engine_failed");
  };
  return {
    name: "inference",
    actions: {
      chat() {
        failing.chats++;
        fail();
      },
      embeddings() {
        failing.embeddings++;
        fail();
      },
      cancel: () => ({ cancelled: false }),
    },
    events: {
      "$node.connected"(this: { broker: ServiceBroker }) {
        void this.broker.broadcast("inference.heartbeat", beat(this.broker));
      },
    },
    started(this: { broker: ServiceBroker }) {
      void this.broker.broadcast("inference.heartbeat", beat(this.broker));
    },
  };
}

beforeAll(async () => {
  env({
    LLM_ROUTER_HOST: "127.0.0.1",
    LLM_ROUTER_PORT: "0",
    LLM_ROUTER_AUTH_DISABLED: "true",
    LLM_ROUTER_HISTORY_ENABLED: "false",
    // each request's order is known: nodes take turns
    LLM_ROUTER_LOAD_BALANCER_MODE: "round_robin",
    LLM_ROUTER_QUEUE_LIMIT: "1",
    LLM_ROUTER_QUEUE_TIMEOUT: "20",
    LLM_NODE_ENGINE: "instant",
    LLM_NODE_DEMO_MODEL: "false",
    LLM_NODE_GPU: "false",
  });
  router = broker("router");
  const load = (name: string) => require(`../../services/${name}.service`).default as ServiceSchema; // eslint-disable-line @typescript-eslint/no-require-imports
  for (const name of ["api", "registry", "balancer"]) router.createService(load(name));
  // one real node, one slot, 20 ms a token
  env({ LLM_NODE_MODELS_DIR: modelsDir(), LLM_NODE_PARALLEL: "1", LLM_NODE_INSTANT_MS_PER_TOKEN: "20" });
  broker("node-real").createService(load("inference"));
  broker("node-failing").createService(failingNode());
  await Promise.all(brokers.map((b) => b.start()));
  const server = router.getLocalService("api") as unknown as { server: { address(): AddressInfo } };
  api = routerClient(`http://127.0.0.1:${server.server.address().port}`);
  const table = routerCore(router).table;
  await waitFor(() => table.serving(MODEL).length === 2, { what: "both nodes in the router's table" });
}, 30_000);

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.stop()));
  process.env = saved;
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe("the request path in one process", () => {
  test("a chat that fails on one node is answered by the other, the client sees one answer", async () => {
    const before = failing.chats;
    // round robin: of two requests, one starts on the failing node
    const answers = await Promise.all(
      [0, 1].map(async () => {
        const res = await api.post("/v1/chat/completions", {
          model: MODEL,
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 2,
        });
        return { status: res.status, node: res.headers.get("x-router-node"), body: (await res.json()) as unknown };
      }),
    );
    expect(answers.map((a) => [a.status, a.node])).toEqual([
      [200, "node-real"],
      [200, "node-real"],
    ]);
    expect(failing.chats).toBeGreaterThan(before);
  });

  test("embeddings are retried the same way", async () => {
    const before = failing.embeddings;
    const statuses = await Promise.all(
      [0, 1].map(async () => (await api.post("/v1/embeddings", { model: MODEL, input: "hi" })).status),
    );
    expect(statuses).toEqual([200, 200]);
    expect(failing.embeddings).toBeGreaterThan(before);
  });

  test("a client that leaves mid-stream stops the generation on its node, and its slot is free again", async () => {
    const ac = new AbortController();
    const res = await api.post(
      "/v1/chat/completions",
      { model: MODEL, messages: [{ role: "user", content: "long" }], max_tokens: 1000, stream: true },
      { signal: ac.signal },
    );
    expect(res.headers.get("x-router-node")).toBe("node-real");
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    // 1000 tokens at 20 ms would hold the node's one slot for 20 s: the cancel frees it at once
    const status = () =>
      router.call<Heartbeat, object>("inference.status", {}, { nodeID: "node-real" }).then((h) => h.active === 0);
    await waitFor(status, { timeoutMs: 3000, what: "the node's slot to be free" });
    expect(routerCore(router).balancer!.stats().inflight).toEqual({});
  });

  test("with the one slot busy, the next request waits in the queue and is served; one more is refused", async () => {
    const long = api.post("/v1/chat/completions", {
      model: SOLO,
      messages: [{ role: "user", content: "hold the slot" }],
      max_tokens: 25,
    });
    const balancer = routerCore(router).balancer!;
    await waitFor(() => balancer.stats().inflight["node-real"] === 1, { what: "the slot to be taken" });
    const queued = api.post("/v1/chat/completions", {
      model: SOLO,
      messages: [{ role: "user", content: "q" }],
      max_tokens: 1,
    });
    await waitFor(() => balancer.stats().queued === 1, { what: "a request in the queue" });
    const refused = await api.post("/v1/chat/completions", {
      model: SOLO,
      messages: [{ role: "user", content: "r" }],
      max_tokens: 1,
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("queue_full");
    expect((await long).status).toBe(200);
    expect((await queued).status).toBe(200);
  });
});
