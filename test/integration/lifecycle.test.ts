/**
 * Graceful lifecycle on real processes: SIGTERM on an inference node drains it
 * (in-flight streams finish, new requests go elsewhere, it exits 0); SIGTERM
 * on the router stops accepting, finishes its streams and keeps their history.
 */
import fs from "node:fs";
import path from "node:path";
import { routerClient, sse, type RouterClient } from "../helpers/client";
import { createKey, login, startCli, startNats, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "slow-model";
let nats: { proc: Proc; url: string };
let router: { proc: Proc; url: string };
const nodes: Record<string, Proc> = {};
/** With the API key; its chat() streams 60 tokens of MODEL. */
let user: RouterClient;
const dataDir = tempDir("lifecycle-data");
const models = tempDir("lifecycle-models");
fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "instant engine: never loaded");

const cluster = () => ({
  TRANSPORTER: nats.url,
  HEARTBEAT_INTERVAL: "1",
  HEARTBEAT_TIMEOUT: "3",
  LLM_NODE_HEARTBEAT_SECS: "1",
  LLM_SHUTDOWN_TIMEOUT_SECS: "20",
});

function startNode(id: string): Proc {
  return startCli(id, {
    ...cluster(),
    SERVICES: "inference",
    NODEID: id,
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    // 60 tokens × 40 ms: a stream of about 2.4 s
    LLM_NODE_INSTANT_MS_PER_TOKEN: "40",
    LLM_NODE_PARALLEL: "4",
  });
}

function startTheRouter() {
  return startRouter("router", { ...cluster(), SERVICES: "router", NODEID: "router-1", LLM_ROUTER_DATA_DIR: dataDir });
}

async function served(): Promise<string[]> {
  return (await user.models()).find((m) => m.id === MODEL)?.nodes ?? [];
}

const stream = (content: string) => user.chat({ messages: [{ role: "user", content }] });

/** Reads a whole SSE answer: its chunks' text and how it ended. */
async function readStream(res: Response) {
  const { done, chunks } = sse(await res.text());
  return {
    done,
    finish: chunks.map((c) => c.choices?.[0]?.finish_reason).find(Boolean) ?? null,
    tokens: chunks.filter((c) => c.choices?.[0]?.delta?.content).length,
  };
}

/** Resolves once the first chunk of `res` has arrived, then reads the rest. */
async function started(res: Response) {
  const reader = res.body!.getReader();
  const first = await reader.read();
  const rest = new Response(
    new ReadableStream({
      start(controller) {
        if (first.value) controller.enqueue(first.value);
      },
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
    }),
  );
  return rest;
}

beforeAll(async () => {
  nats = await startNats();
  nodes["node-a"] = startNode("node-a");
  nodes["node-b"] = startNode("node-b");
  router = await startTheRouter();
  user = routerClient(router.url, {
    key: await createKey(router.url),
    chat: { model: MODEL, max_tokens: 60, stream: true },
  });
  await waitFor(async () => (await served()).length === 2, { timeoutMs: 60_000, what: "both nodes serving" });
}, 90_000);

afterAll(async () => {
  await Promise.all([router?.proc.stop(), ...Object.values(nodes).map((n) => n.stop())]);
  await nats?.proc.stop();
});

describe("graceful lifecycle", () => {
  test("SIGTERM on a node: its stream finishes, new requests go to the other node, it exits 0", async () => {
    const res = await stream("drain me");
    expect(res.status).toBe(200);
    const nodeId = res.headers.get("x-router-node")!;
    const other = nodeId === "node-a" ? "node-b" : "node-a";
    const rest = await started(res);
    nodes[nodeId].child.kill("SIGTERM");
    // the router hears the node is leaving at once, not after a heartbeat timeout
    await waitFor(async () => !(await served()).includes(nodeId), { what: `${nodeId} out of the served list` });
    const next = await stream("after the signal");
    expect(next.headers.get("x-router-node")).toBe(other);
    const [drained, fresh] = await Promise.all([readStream(rest), readStream(next)]);
    expect(drained).toMatchObject({ done: true, finish: "length", tokens: 60 });
    expect(fresh).toMatchObject({ done: true, finish: "length" });
    expect(await nodes[nodeId].exited).toBe(0);
    expect(nodes[nodeId].output).toMatch(/Draining: finishing 1 request/);
    // back for the next test
    nodes[nodeId] = startNode(nodeId);
    await waitFor(async () => (await served()).length === 2, { timeoutMs: 60_000, what: "the node back" });
  }, 90_000);

  test("SIGTERM on the router: it stops accepting, finishes its stream, exits 0, and the stream is in history", async () => {
    const res = await stream("router going down");
    const rest = await started(res);
    router.proc.child.kill("SIGTERM");
    await router.proc.waitForOutput(/SIGTERM: draining/);
    // no new connections once it drains
    await expect(fetch(`${router.url}/health`)).rejects.toThrow();
    expect(await readStream(rest)).toMatchObject({ done: true, finish: "length", tokens: 60 });
    expect(await router.proc.exited).toBe(0);

    router = await startTheRouter();
    const api = routerClient(router.url, { token: await login(router.url) });
    const list = await api.get("/api/dashboard/request-responses?q=router%20going%20down");
    const body = (await list.json()) as { total_count: number; records: Array<{ status: number; tokens_out: number }> };
    expect(body.total_count).toBe(1);
    expect(body.records[0]).toMatchObject({ status: 200, tokens_out: 60 });
  }, 90_000);
});
