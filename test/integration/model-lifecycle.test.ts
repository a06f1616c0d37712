/**
 * More models than memory, over NATS with real node-llama-cpp on generated
 * models: loaded on demand, least recently used unloaded past a node's limit
 * or after its idle time, pinned models kept, a model placed on the node it
 * fits on, and the operator's load and unload.
 */
import fs from "node:fs";
import OpenAI from "openai";
import { routerClient, type RouterClient } from "../helpers/client";
import {
  cliAgainst,
  createKey,
  login,
  startCli,
  startNats,
  startRouter,
  tempDir,
  writeModel,
  type Proc,
} from "../helpers/procs";
import { waitFor } from "../helpers/wait";

interface ModelFile {
  id: string;
  state: string;
  loads: number;
  error: string | null;
  estimated_bytes: number | null;
  pinned: boolean;
}

let nats: { proc: Proc; url: string };
let router: { proc: Proc; url: string };
const nodes: Record<string, Proc> = {};
let user: RouterClient;
let admin: RouterClient;
let client: OpenAI;

const chat = (model: string, max_tokens = 3) =>
  user.json("POST", "/v1/chat/completions", { model, max_tokens, messages: [{ role: "user", content: "hi" }] });

async function files(node: string): Promise<Record<string, ModelFile>> {
  const list = (await admin.nodes()) as Array<{ id: string; model_files: ModelFile[] }>;
  const n = list.find((x) => x.id === node);
  return Object.fromEntries((n?.model_files ?? []).map((f) => [f.id, f]));
}

/** The node's resident memory, from /proc (bytes). */
function rss(proc: Proc): number {
  const status = fs.readFileSync(`/proc/${proc.child.pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

function startNode(id: string, models: string, env: Record<string, string> = {}): Proc {
  const p = startCli(id, {
    TRANSPORTER: nats.url,
    SERVICES: "inference",
    NODEID: id,
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_PARALLEL: "2",
    LLM_NODE_CONTEXT_SIZE: "1024",
    LLM_NODE_HEARTBEAT_SECS: "1",
    ...env,
  });
  nodes[id] = p;
  return p;
}

beforeAll(async () => {
  nats = await startNats();
  // five models on one node with room for two, the first pinned; the last is 100 MB (its unload shows in RSS)
  const five = tempDir("lifecycle-five");
  for (const id of ["five-1", "five-2", "five-3", "five-4"]) writeModel(five, id, { contextLength: 1024 });
  writeModel(five, "five-big", {
    embedding: 512,
    layers: 8,
    feedForward: 1376,
    heads: 8,
    kvHeads: 8,
    contextLength: 1024,
  });
  startNode("node-five", five, { LLM_NODE_MAX_LOADED_MODELS: "2", LLM_NODE_PINNED_MODELS: "five-1" });
  // one model on two nodes, too big for the first's budget; the second unloads what sits idle 2 s
  const shared = tempDir("lifecycle-shared");
  writeModel(shared, "wide", {
    embedding: 256,
    layers: 4,
    feedForward: 512,
    heads: 8,
    kvHeads: 4,
    contextLength: 1024,
  });
  fs.writeFileSync(`${shared}/broken.gguf`, "this is not a GGUF file");
  startNode("node-small", shared, { LLM_NODE_MEMORY_BUDGET: "1mb", LLM_NODE_LOAD_AT_START: "pinned" });
  startNode("node-roomy", shared, { LLM_NODE_MODEL_IDLE_SECS: "2", LLM_NODE_LOAD_AT_START: "pinned" });
  router = await startRouter("router", { TRANSPORTER: nats.url, SERVICES: "router", NODEID: "router-lifecycle" });
  const key = await createKey(router.url);
  user = routerClient(router.url, { key });
  admin = routerClient(router.url, { token: await login(router.url) });
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: key, maxRetries: 0 });
  await waitFor(
    async () => {
      const models = await user.models();
      const wide = models.find((m) => m.id === "wide") as { available_on?: string[] } | undefined;
      return models.some((m) => m.id === "five-1") && wide?.available_on?.length === 2;
    },
    { timeoutMs: 90_000, what: "the three nodes serving" },
  );
}, 120_000);

afterAll(async () => {
  await router?.proc.stop();
  await Promise.all(Object.values(nodes).map((n) => n.stop()));
  await nats?.proc.stop();
});

test("/v1/models lists loaded and available models with their nodes", async () => {
  const r = await user.json("GET", "/v1/models");
  const byId = Object.fromEntries((r.body.data as Array<{ id: string }>).map((m) => [m.id, m]));
  expect(byId["five-1"]).toMatchObject({ status: "loaded", nodes: ["node-five"] });
  expect(byId["five-3"]).toMatchObject({ status: "available", nodes: [], available_on: ["node-five"] });
  expect(byId.wide).toMatchObject({ status: "available", available_on: ["node-roomy", "node-small"] });
  // a file that is not a GGUF is not offered, and its node says why
  expect(byId.broken).toBeUndefined();
  expect((await files("node-small")).broken).toMatchObject({ state: "failed", error: expect.stringMatching(/GGUF/) });
});

test("a node with room for two serves five models in turn: loads on demand, the least recently used unloaded, the pinned kept", async () => {
  const seen: string[][] = [];
  let bigRss = 0;
  for (const model of ["five-3", "five-4", "five-big", "five-2"]) {
    const r = await chat(model);
    expect(r.status).toBe(200);
    expect(r.body.model).toBe(model);
    const f = await files("node-five");
    const loaded = Object.values(f)
      .filter((x) => x.state === "ready")
      .map((x) => x.id)
      .sort();
    seen.push(loaded);
    expect(loaded.length).toBeLessThanOrEqual(2);
    expect(f["five-1"].state).toBe("ready");
    if (model === "five-big") bigRss = rss(nodes["node-five"]);
  }
  expect(seen).toEqual([
    ["five-1", "five-3"],
    ["five-1", "five-4"],
    ["five-1", "five-big"],
    ["five-1", "five-2"],
  ]);
  // the 100 MB model's memory went back when it was unloaded
  expect(rss(nodes["node-five"])).toBeLessThan(bigRss - 40 * 2 ** 20);
  const f = await files("node-five");
  expect(f["five-big"].loads).toBe(1);
  expect(f["five-1"].loads).toBe(1);
});

test("requests for one unloaded model at once cause one load; history records the wait for it", async () => {
  const before = (await files("node-five"))["five-3"].loads;
  expect((await files("node-five"))["five-3"].state).toBe("available");
  const answers = await Promise.all(Array.from({ length: 4 }, () => chat("five-3")));
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
  expect((await files("node-five"))["five-3"].loads).toBe(before + 1);
  const id = answers[0].headers.get("x-request-id")!;
  const rec = await waitFor(async () => {
    const r = await admin.json("GET", `/api/dashboard/request-responses/${id}`);
    return r.status === 200 ? r.body : null;
  });
  expect(rec.load_ms).toBeGreaterThan(0);
});

test("a model goes to the node it fits on; that node unloads it once idle", async () => {
  const small = await files("node-small");
  expect(small.wide.estimated_bytes).toBeGreaterThan(2 ** 20);
  const r = await chat("wide");
  expect(r.status).toBe(200);
  expect(r.headers.get("x-router-node")).toBe("node-roomy");
  expect((await files("node-roomy")).wide.state).toBe("ready");
  await waitFor(async () => (await files("node-roomy")).wide.state === "available", {
    timeoutMs: 15_000,
    what: "the idle model unloaded",
  });
  expect((await files("node-small")).wide.state).toBe("available");
});

test("the operator loads and unloads; bad requests get a clear 4xx", async () => {
  const load = await admin.json("POST", "/api/models/five-4/load", {});
  expect(load.status).toBe(200);
  expect(load.body).toMatchObject({ model: "five-4", node: "node-five", state: "ready" });
  expect((await files("node-five"))["five-4"].state).toBe("ready");
  const unload = await admin.json("POST", "/api/models/five-4/unload", {});
  expect(unload.status).toBe(200);
  expect((await files("node-five"))["five-4"].state).toBe("available");

  const pinned = await admin.json("POST", "/api/models/five-1/unload", {});
  expect(pinned.status).toBe(409);
  expect(pinned.body.error.code).toBe("model_pinned");
  const broken = await admin.json("POST", "/api/models/broken/load", { node: "node-small" });
  expect(broken.status).toBe(422);
  expect(broken.body.error.message).toMatch(/GGUF/);
  const tooBig = await admin.json("POST", "/api/models/wide/load", { node: "node-small" });
  expect(tooBig.status).toBe(409);
  expect(tooBig.body.error.code).toBe("model_does_not_fit");
  expect((await admin.json("POST", "/api/models/nope/load", {})).status).toBe(404);

  // the same through the CLI
  const status = await cliAgainst(router.url, "model", "status");
  expect(status.code).toBe(0);
  expect(status.out).toMatch(/five-4\tavailable\tloaded on: -\tavailable on: node-five/);
  const cliLoad = await cliAgainst(router.url, "model", "load", "five-4", "--node", "node-five");
  expect(cliLoad.out).toContain("five-4 is loaded on node-five");
  const cliUnload = await cliAgainst(router.url, "model", "unload", "five-4");
  expect(cliUnload.out).toContain("five-4 unloaded from node-five");
  // the node that refused goes on serving
  expect((await chat("five-1")).status).toBe(200);
});

test("the official client lists the models and gets an answer from one loaded on demand", async () => {
  const list = await client.models.list();
  expect(list.data.map((m) => m.id)).toEqual(expect.arrayContaining(["five-1", "five-4", "wide"]));
  const r = await client.chat.completions.create({
    model: "five-4",
    max_tokens: 3,
    messages: [{ role: "user", content: "hi" }],
  });
  expect(r.model).toBe("five-4");
  expect(r.choices[0].message.content).toBeTruthy();
});
