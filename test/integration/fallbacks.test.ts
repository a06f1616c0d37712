/**
 * Aliases and fallback chains on the request path, over NATS with real
 * node-llama-cpp nodes and an OpenAI stand-in as the cloud: the official
 * `openai` client asks for an alias and gets an answer naming it; a model
 * whose queue is full, or that no node takes in time, falls back; a chain
 * whose first model's only node is killed goes on to the next, local then
 * cloud. `X-Router-Model` and history say which model answered.
 */
import OpenAI from "openai";
import { routerClient, sse, type RouterClient } from "../helpers/client";
import { createKey, login, startCli, startNats, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { OPENAI_TEST_KEY, startOpenAIStandIn, type StandIn } from "../helpers/standins/openai";
import { waitFor } from "../helpers/wait";

let nats: { proc: Proc; url: string };
let router: { proc: Proc; url: string };
let cloud: StandIn;
const nodes: Record<string, Proc> = {};
let user: RouterClient;
let admin: RouterClient;
let client: OpenAI;

const FALLBACK_AFTER_SECS = 3;
const ask = (model: string, extra: Record<string, unknown> = {}) =>
  user.json("POST", "/v1/chat/completions", {
    model,
    max_tokens: 3,
    messages: [{ role: "user", content: "hi" }],
    ...extra,
  });

async function record(id: string) {
  return waitFor(async () => {
    const r = await admin.json("GET", `/api/dashboard/request-responses/${id}`);
    return r.status === 200 ? r.body : null;
  });
}

function startNode(id: string, model: string): Proc {
  const models = tempDir(`fallbacks-${id}`);
  writeModel(models, model, { contextLength: 16384 });
  nodes[id] = startCli(id, {
    TRANSPORTER: nats.url,
    HEARTBEAT_INTERVAL: "1",
    HEARTBEAT_TIMEOUT: "3",
    SERVICES: "inference",
    NODEID: id,
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_PARALLEL: "1",
    LLM_NODE_CONTEXT_SIZE: "16384",
  });
  return nodes[id];
}

beforeAll(async () => {
  cloud = await startOpenAIStandIn();
  nats = await startNats();
  startNode("node-a", "local-a");
  startNode("node-b", "local-b");
  startNode("node-doomed", "doomed");
  router = await startRouter("router", {
    TRANSPORTER: nats.url,
    HEARTBEAT_INTERVAL: "1",
    HEARTBEAT_TIMEOUT: "3",
    SERVICES: "router",
    NODEID: "router-fallbacks",
    OPENAI_API_KEY: OPENAI_TEST_KEY,
    OPENAI_BASE_URL: cloud.url,
    LLM_ROUTER_QUEUE_LIMIT: "1",
    LLM_ROUTER_FALLBACK_AFTER_SECS: String(FALLBACK_AFTER_SECS),
  });
  const key = await createKey(router.url);
  user = routerClient(router.url, { key });
  admin = routerClient(router.url, { token: await login(router.url) });
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: key, maxRetries: 0 });
  await waitFor(
    async () => {
      const ids = (await user.models()).map((m) => m.id);
      return ["local-a", "local-b", "doomed"].every((m) => ids.includes(m));
    },
    { timeoutMs: 90_000, what: "the three nodes serving" },
  );
}, 120_000);

afterAll(async () => {
  await router?.proc.stop();
  await Promise.all(Object.values(nodes).map((n) => n.stop()));
  await nats?.proc.stop();
  await cloud?.close();
});

test("an alias to a local model: the official client's answers name the alias, X-Router-Model and history the model", async () => {
  expect((await admin.answer("POST", "/api/aliases", { alias: "gpt-4o-mini", model: "local-a" })).status).toBe(201);
  const { data, response } = await client.chat.completions
    .create({ model: "gpt-4o-mini", max_tokens: 3, messages: [{ role: "user", content: "hi" }] })
    .withResponse();
  expect(data.model).toBe("gpt-4o-mini");
  expect(response.headers.get("x-router-model")).toBe("local-a");
  expect(response.headers.get("x-router-node")).toBe("node-a");
  const rec = await record(response.headers.get("x-request-id")!);
  expect(rec).toMatchObject({ model: "gpt-4o-mini", served_model: "local-a" });

  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini",
    max_tokens: 3,
    stream: true,
    messages: [{ role: "user", content: "hi" }],
  });
  const models = new Set<string>();
  for await (const chunk of stream) models.add(chunk.model);
  expect([...models]).toEqual(["gpt-4o-mini"]);

  const listed = (await client.models.list()).data.find((m) => m.id === "gpt-4o-mini");
  expect(listed).toMatchObject({ alias_of: "local-a", status: "loaded", nodes: ["node-a"] });
});

test("an alias to a cloud model: the provider gets its model, the client the alias", async () => {
  expect((await admin.answer("POST", "/api/aliases", { alias: "cloudy", model: "openai:gpt-4o-mini" })).status).toBe(
    201,
  );
  const { data, response } = await client.chat.completions
    .create({ model: "cloudy", max_tokens: 3, messages: [{ role: "user", content: "hi" }] })
    .withResponse();
  expect(data.model).toBe("cloudy");
  expect(response.headers.get("x-router-model")).toBe("openai:gpt-4o-mini");
  expect(cloud.requests.at(-1)?.body.model).toBe("gpt-4o-mini");
});

test("a model whose queue is full falls back at once; one no node takes in time falls back after LLM_ROUTER_FALLBACK_AFTER_SECS", async () => {
  expect((await admin.answer("PUT", "/api/fallbacks/local-a", { fallbacks: ["local-b"] })).status).toBe(200);
  // local-a's only slot busy with a long generation
  const hog = new AbortController();
  const long = await user.chat(
    { model: "local-a", stream: true, max_tokens: 15_000, messages: [{ role: "user", content: "go" }] },
    { signal: hog.signal },
  );
  expect(long.headers.get("x-router-model")).toBe("local-a");
  await long.body!.getReader().read();
  try {
    const t0 = Date.now();
    const waiting = ask("local-a").then((r) => ({ r, ms: Date.now() - t0 }));
    await waitFor(async () => (await routerClient(router.url).json("GET", "/health")).body.queued_requests === 1, {
      what: "the first request waiting in the queue",
    });
    // the queue (limit 1) is full: the next goes to the fallback at once
    const full = await ask("local-a");
    expect(full.status).toBe(200);
    expect(full.headers.get("x-router-model")).toBe("local-b");
    expect(full.body.model).toBe("local-a");
    // the waiting one gave up on local-a after its time and went to local-b
    const { r, ms } = await waiting;
    expect(r.status).toBe(200);
    expect(r.headers.get("x-router-model")).toBe("local-b");
    expect(ms).toBeGreaterThanOrEqual(FALLBACK_AFTER_SECS * 1000 - 100);
    const rec = await record(r.headers.get("x-request-id")!);
    expect(rec).toMatchObject({ model: "local-a", served_model: "local-b", node_id: "node-b" });
  } finally {
    hog.abort();
  }
});

test("a chain whose first model's only node is killed goes on: to the next local model, then to the cloud", async () => {
  const chain = { alias: "smart", model: "doomed", fallbacks: ["local-b", "openai:gpt-4o-mini"] };
  expect((await admin.answer("POST", "/api/aliases", chain)).status).toBe(201);
  const first = await ask("smart");
  expect(first.headers.get("x-router-model")).toBe("doomed");

  nodes["node-doomed"].child.kill("SIGKILL");
  const next = await user.post("/v1/chat/completions", {
    model: "smart",
    max_tokens: 3,
    stream: true,
    messages: [{ role: "user", content: "hi" }],
  });
  expect(next.status).toBe(200);
  expect(next.headers.get("x-router-model")).toBe("local-b");
  const chunks = sse(await next.text()).chunks;
  expect(chunks.length).toBeGreaterThan(0);
  expect(chunks.every((c) => c.model === "smart")).toBe(true);

  nodes["node-b"].child.kill("SIGKILL");
  const last = await ask("smart");
  expect(last.status).toBe(200);
  expect(last.headers.get("x-router-model")).toBe("openai:gpt-4o-mini");
  expect(last.body.model).toBe("smart");
  const rec = await record(last.headers.get("x-request-id")!);
  expect(rec).toMatchObject({ model: "smart", served_model: "openai:gpt-4o-mini" });
});
