/**
 * A real cluster: a private nats-server, one router process and two inference
 * node processes, all started from the CLI as a user would.
 */
import { routerClient, sse, type RouterClient } from "../helpers/client";
import { createKey, login, startCli, startNats, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-chat";
let nats: { proc: Proc; url: string };
let router: { proc: Proc; url: string };
const nodes: Record<string, Proc> = {};
/** With the API key; its chat() asks MODEL "hi" for 4 tokens unless told otherwise. */
let user: RouterClient;
/** With the admin's login. */
let api: RouterClient;

interface NodeView {
  id: string;
  status: string;
  models: string[];
  active_requests: number;
}

/** The SSE events of a finished stream: ends with [DONE] after a chunk with `finish_reason`. */
async function finishReason(res: Response): Promise<string> {
  const { done, chunks } = sse(await res.text());
  expect(done).toBe(true);
  return chunks[chunks.length - 1].choices[0].finish_reason;
}

beforeAll(async () => {
  nats = await startNats();
  const cluster = {
    TRANSPORTER: nats.url,
    HEARTBEAT_INTERVAL: "1",
    HEARTBEAT_TIMEOUT: "3",
    LLM_NODE_HEARTBEAT_SECS: "2",
  };
  // a long context lets one request run for many seconds, to see a cancel stop it
  const models = tempDir("cluster-models");
  writeModel(models, MODEL, { contextLength: 16384 });
  for (const id of ["node-a", "node-b"]) {
    nodes[id] = startCli(id, {
      ...cluster,
      SERVICES: "inference",
      NODEID: id,
      LLM_NODE_NAME: `machine-${id}`,
      LLM_NODE_MODELS_DIR: models,
      LLM_NODE_PARALLEL: "2",
      LLM_NODE_CONTEXT_SIZE: "16384",
    });
  }
  router = await startRouter("router", { ...cluster, SERVICES: "router", NODEID: "router-1" });
  user = routerClient(router.url, {
    key: await createKey(router.url),
    chat: { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
  });
  api = routerClient(router.url, { token: await login(router.url) });
  await waitFor(async () => (await user.models())[0]?.nodes.length === 2, {
    timeoutMs: 60_000,
    what: "both inference nodes serving the model",
  });
}, 90_000);

afterAll(async () => {
  await Promise.all([router?.proc.stop(), ...Object.values(nodes).map((n) => n.stop())]);
  await nats?.proc.stop();
});

describe("router + two inference nodes over NATS", () => {
  test("the registry lists both nodes under their NODEID with machine name and models", async () => {
    const list = await api.nodes();
    expect(list.map((n) => n.id)).toEqual(["node-a", "node-b"]);
    for (const n of list) {
      expect(n).toMatchObject({ status: "online", models: [MODEL], machine_name: `machine-${n.id}`, capacity: 2 });
    }
    expect((await user.models()).map((m) => m.id)).toEqual([MODEL]);
  });

  test("concurrent requests spread over both nodes", async () => {
    const burst = await Promise.all(Array.from({ length: 4 }, () => user.chat({ max_tokens: 200 })));
    const served = burst.map((res) => {
      expect(res.status).toBe(200);
      return res.headers.get("x-router-node");
    });
    await Promise.all(burst.map((res) => res.json()));
    expect([...new Set(served)].sort()).toEqual(["node-a", "node-b"]);
  });

  test("a stream crosses NATS token by token", async () => {
    const res = await user.chat({ stream: true, max_tokens: 40, temperature: 0 });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const { done, chunks } = sse(await res.text());
    expect(done).toBe(true);
    const withText = chunks.filter((c) => c.choices[0]?.delta?.content);
    // one chunk per generated token (the tiny model emits one printable byte per token)
    expect(withText).toHaveLength(40);
    expect(withText.every((c) => c.choices[0].delta.content.length === 1)).toBe(true);
    expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe("length");
  });

  test("an input to embed past the context is the node's 400 context_length_exceeded, across NATS", async () => {
    const embed = (input: unknown) => user.post("/v1/embeddings", { model: MODEL, input });
    // the context is 16384 tokens; a "hello " is 6 of them
    for (const input of ["hello ".repeat(2800), ["hi", "hello ".repeat(2800)], "x".repeat(500_000)]) {
      const res = await embed(input);
      expect(res.status).toBe(400);
      expect(["node-a", "node-b"]).toContain(res.headers.get("x-router-node"));
      expect(((await res.json()) as { error: object }).error).toEqual({
        message: expect.stringMatching(/this model's context of 16384/),
        type: "invalid_request_error",
        param: "input",
        code: "context_length_exceeded",
      });
    }
    // more than one NATS message holds (max_payload, 1 MB): it never reaches a node
    const huge = await embed("x".repeat(1 << 20));
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: object }).error).toMatchObject({
      type: "invalid_request_error",
      code: "request_too_large",
    });
    expect((await embed(["hi", "there"])).status).toBe(200);
  });

  test("a client that disconnects mid-stream stops the generation on the node", async () => {
    const ac = new AbortController();
    // 12k tokens take far longer than the deadline below unless the node stops
    const res = await user.chat({ stream: true, max_tokens: 12_000 }, { signal: ac.signal });
    const nodeID = res.headers.get("x-router-node") ?? "";
    const reader = res.body!.getReader();
    await reader.read();
    await waitFor(async () => (await api.nodes()).find((n) => n.id === nodeID)?.active_requests === 1, {
      what: "the node to report the request active",
    });
    ac.abort();
    // well before the 12k tokens could be done (~20 s here)
    await waitFor(async () => (await api.nodes()).find((n) => n.id === nodeID)?.active_requests === 0, {
      timeoutMs: 10_000,
      what: "the node to stop generating",
    });
    expect(nodes[nodeID].output).not.toMatch(/Unhandled|TypeError/);
  });

  test("drain: in-flight requests finish, new ones go elsewhere, undrain brings the node back", async () => {
    const running = await user.chat({ stream: true, max_tokens: 300 });
    const busy = running.headers.get("x-router-node")!;
    const other = busy === "node-a" ? "node-b" : "node-a";
    const drained = await api.post(`/api/nodes/${busy}/drain`);
    expect(((await drained.json()) as { draining: boolean }).draining).toBe(true);

    const burst = await Promise.all(Array.from({ length: 4 }, () => user.chat({ max_tokens: 20 })));
    expect(burst.map((r) => r.headers.get("x-router-node"))).toEqual([other, other, other, other]);
    await Promise.all(burst.map((r) => r.text()));
    expect((await user.models())[0].nodes).toEqual([other]);

    expect(await finishReason(running)).toBe("length");

    await api.post(`/api/nodes/${busy}/undrain`);
    expect((await user.models())[0].nodes).toEqual(["node-a", "node-b"]);

    const named = await api.request("PUT", `/api/nodes/${busy}/settings`, {
      name: "GPU box",
      tags: ["rack-2"],
      notes: "fan noisy",
    });
    expect(await named.json()).toMatchObject({
      id: busy,
      display_name: "GPU box",
      tags: ["rack-2"],
      notes: "fan noisy",
    });
    expect(await (await api.get(`/api/nodes/${busy}`)).json()).toMatchObject({
      display_name: "GPU box",
      draining: false,
    });
    expect((await api.get("/api/nodes/ghost")).status).toBe(404);
    const agents = await api.get("/api/agents");
    expect(((await agents.json()) as NodeView[]).map((n) => n.id)).toEqual(["node-a", "node-b"]);
  });

  test("kill -9 of a node during a run of requests: no request fails, and traffic moves to the other", async () => {
    let stop = false;
    const statuses: number[] = [];
    const served: string[] = [];
    const worker = async () => {
      while (!stop) {
        const res = await user.chat({ max_tokens: 200 });
        statuses.push(res.status);
        served.push(res.headers.get("x-router-node") ?? "");
        await res.text();
      }
    };
    const workers = [worker(), worker(), worker()];
    // each answer is 200 tokens of real inference: on a busy machine the first ones take a while
    await waitFor(() => served.includes("node-a") && served.includes("node-b"), {
      timeoutMs: 60_000,
      what: "load on both nodes",
    });
    // one long request surely on node-a (node-b drained while it is routed): the kill must move it to node-b
    await api.post("/api/nodes/node-b/drain");
    const pinned = user.chat({ max_tokens: 3000 });
    await waitFor(async () => ((await api.nodes()).find((n) => n.id === "node-a")?.active_requests ?? 0) > 0, {
      what: "node-a to be running a request",
    });
    await api.post("/api/nodes/node-b/undrain");
    nodes["node-a"].child.kill("SIGKILL");
    await nodes["node-a"].exited;
    const killedAt = statuses.length;
    await waitFor(async () => (await api.nodes()).find((n) => n.id === "node-a")?.status === "offline", {
      timeoutMs: 20_000,
      what: "node-a to be marked offline",
    });
    await waitFor(() => statuses.length >= killedAt + 6, { what: "requests after the kill" });
    stop = true;
    await Promise.all(workers);
    const moved = await pinned;
    expect([moved.status, moved.headers.get("x-router-node")]).toEqual([200, "node-b"]);
    await moved.text();
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(served.slice(-3)).toEqual(["node-b", "node-b", "node-b"]);
    expect((await user.models())[0].nodes).toEqual(["node-b"]);
    expect(router.proc.output).toMatch(/Node node-a failed .* retrying/);
  });

  test("disconnect: the node finishes its stream and leaves (exit 0); with no node left the router answers 503", async () => {
    expect((await api.post("/api/nodes/ghost/disconnect")).status).toBe(404);
    // long enough (seconds) to be still running when the disconnect reaches the node on a busy machine
    const running = await user.chat({ stream: true, max_tokens: 3000 });
    expect(running.headers.get("x-router-node")).toBe("node-b");
    const asked = await api.post("/api/nodes/node-b/disconnect");
    expect(asked.status).toBe(200);
    expect(await asked.json()).toEqual({ id: "node-b", disconnecting: true, active_requests: 1 });
    const again = await api.post("/api/nodes/node-b/disconnect");
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("node_offline");

    expect(await finishReason(running)).toBe("length");
    expect(await nodes["node-b"].exited).toBe(0);
    expect(nodes["node-b"].output).toMatch(/Asked to leave the cluster: finishing 1 request/);
    await waitFor(async () => (await api.nodes()).every((n) => n.status === "offline"), {
      timeoutMs: 20_000,
      what: "all nodes offline",
    });
    const res = await user.chat();
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("no_available_node");
    expect(router.proc.alive).toBe(true);
  });
});
