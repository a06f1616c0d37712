/**
 * An external OpenAI-compatible runtime: a second router (with its own model
 * and API key) registered by URL on a router that has no inference nodes. It
 * is used, health-checked offline when it stops, and used again when it returns.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { routerClient } from "../helpers/client";
import { createKey, freePort, login, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { OPENAI_TEST_KEY, startOpenAIStandIn } from "../helpers/standins/openai";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-ext";
let front: { proc: Proc; url: string };
let back: { proc: Proc; url: string };
let backEnv: Record<string, string>;
let frontEnv: Record<string, string>;
let backKey: string;
let frontKey: string;
let admin: string;
/** The first runtime's id and the node token its registration answered. */
let extId: string;
let nodeToken: string;

/** The front router running now, with the admin's login. */
const api = () => routerClient(front.url, { token: admin });
/** The front router running now, with its API key. */
const user = () => routerClient(front.url, { key: frontKey });

async function node(id: string) {
  return (await (await api().get(`/api/nodes/${id}`)).json()) as {
    id: string;
    status: string;
    kind: string;
    models: string[];
    base_url: string;
  };
}

const register = (body: unknown) => api().post("/api/nodes", body);

beforeAll(async () => {
  const models = tempDir("ext-models");
  writeModel(models, MODEL);
  backEnv = {
    LLM_NODE_MODELS_DIR: models,
    LLM_ROUTER_PORT: String(await freePort()),
    LLM_ROUTER_DATA_DIR: tempDir("ext-back"),
  };
  back = await startRouter("back", backEnv);
  await back.proc.waitForOutput(/is online/);
  backKey = await createKey(back.url);
  frontEnv = { SERVICES: "router", LLM_ROUTER_HEALTH_CHECK_INTERVAL: "1", LLM_ROUTER_DATA_DIR: tempDir("ext-front") };
  front = await startRouter("front", frontEnv);
  frontKey = await createKey(front.url);
  admin = await login(front.url);
}, 90_000);

afterAll(async () => {
  await Promise.all([front?.proc.stop(), back?.proc.stop()]);
});

test("registered by URL, its models are served through the router, plain and streamed", async () => {
  const res = await register({ base_url: `${back.url}/v1`, api_key: backKey, name: "router-b", parallel: 2 });
  expect(res.status).toBe(201);
  const view = (await res.json()) as {
    id: string;
    kind: string;
    status: string;
    models: string[];
    machine_name: string;
    node_token: string;
  };
  expect(view).toMatchObject({ kind: "external", status: "online", models: [MODEL], machine_name: "router-b" });
  expect(view.node_token).toMatch(/^nt-[A-Za-z0-9_-]{43}$/);
  extId = view.id;
  nodeToken = view.node_token;
  expect(JSON.stringify(await (await api().get("/api/nodes")).json())).not.toContain(backKey);

  const client = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: frontKey, maxRetries: 0 });
  expect((await client.models.list()).data.map((m) => m.id)).toEqual([MODEL]);
  const plain = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 6,
    temperature: 0,
  });
  expect(plain.choices[0].message.content).toHaveLength(6);
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 6,
    temperature: 0,
    stream: true,
  });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
  expect(text).toBe(plain.choices[0].message.content);
  const emb = await client.embeddings.create({ model: MODEL, input: "hi", encoding_format: "float" });
  expect(emb.data[0].embedding).toHaveLength(64);
});

test("bad registrations are clear 4xx/5xx answers", async () => {
  expect((await register({ base_url: `${back.url}/v1`, api_key: backKey })).status).toBe(409);
  expect((await register({ base_url: "not a url" })).status).toBe(400);
  const port = await freePort();
  const dead = await register({ base_url: `http://127.0.0.1:${port}/v1` });
  expect(dead.status).toBe(502);
  expect(((await dead.json()) as { error: { code: string } }).error.code).toBe("upstream_unreachable");
  // the same server under another name is another runtime; with a wrong key it is refused (not with a 401,
  // which would read as the admin's own login failing), naming the URL tried
  const wrongKey = await register({
    base_url: `${back.url.replace("127.0.0.1", "localhost")}/v1`,
    api_key: "sk-wrong",
  });
  expect(wrongKey.status).toBe(422);
  const refused = ((await wrongKey.json()) as { error: { message: string; param: string } }).error;
  expect(refused.param).toBe("api_key");
  expect(refused.message).toContain(`${back.url.replace("127.0.0.1", "localhost")}/v1/models answered 401`);
});

test("1 MB of text to embed is the runtime's 400, passed on", async () => {
  const res = await user().post("/v1/embeddings", { model: MODEL, input: "x".repeat(1 << 20) });
  expect(res.status).toBe(400);
  expect(((await res.json()) as ErrorBody).error.message).toMatch(/is 1048576 characters: more than the \d+ tokens/);
});

type ErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } };

const agents = (body: unknown) => api().post("/api/agents", body);

test.each([
  ["an IPv6 address missing its bracket", { base_url: "http://[::1:1/v1" }, "base_url"],
  ["a user and password in the URL", { base_url: "http://u:p@127.0.0.1:9/v1" }, "base_url"],
  ["a query", { base_url: "http://127.0.0.1:9/v1?x=1" }, "base_url"],
  ["a fragment", { base_url: "http://127.0.0.1:9/v1#x" }, "base_url"],
  ["another scheme", { base_url: "file:///etc/passwd" }, "base_url"],
  ["a base_url that is not a string", { base_url: ["http://127.0.0.1:9/v1"] }, "base_url"],
  ["a base_url of 3,000 characters", { base_url: `http://127.0.0.1:9/${"a".repeat(3000)}` }, "base_url"],
  ["a name of 500 characters", { base_url: "http://127.0.0.1:9/v1", name: "n".repeat(500) }, "name"],
  ["a key with a line break", { base_url: "http://127.0.0.1:9/v1", api_key: "sk\r\nx: y" }, "api_key"],
])("POST /api/nodes with %s: 400 on its field, nothing called", async (_why, body, param) => {
  const res = await register(body);
  expect(res.status).toBe(400);
  expect(((await res.json()) as ErrorBody).error).toMatchObject({
    type: "invalid_request_error",
    param,
    code: "invalid_value",
  });
});

test.each([
  ["an address with a port, path and query", { ip_address: "127.0.0.1:9/x?", runtime_port: 9 }, "ip_address"],
  ["an address with dot segments", { ip_address: "127.0.0.1/../../", runtime_port: 1 }, "ip_address"],
  ["an address with a user", { ip_address: "u@127.0.0.1", runtime_port: 9 }, "ip_address"],
  ["an address with a space", { ip_address: "127.0.0.1 x", runtime_port: 9 }, "ip_address"],
  ["no address", { runtime_port: 9 }, "ip_address"],
  ["port 0", { ip_address: "127.0.0.1", runtime_port: 0 }, "runtime_port"],
  ["port 70000", { ip_address: "127.0.0.1", runtime_port: 70_000 }, "runtime_port"],
  ["a fractional port", { ip_address: "127.0.0.1", runtime_port: 80.5 }, "runtime_port"],
  ["a port that is not a number", { ip_address: "127.0.0.1", runtime_port: "http" }, "runtime_port"],
  ["no port", { ip_address: "127.0.0.1" }, "runtime_port"],
  [
    "a machine name of 500 characters",
    { ip_address: "127.0.0.1", runtime_port: 9, machine_name: "m".repeat(500) },
    "machine_name",
  ],
])("POST /api/agents with %s: 400 on its field", async (_why, body, param) => {
  const res = await agents({ machine_name: "box", ...body });
  expect(res.status).toBe(400);
  expect(((await res.json()) as ErrorBody).error).toMatchObject({ param, type: "invalid_request_error" });
});

test("a base URL whose /models is not found says which URL it tried and suggests the one ending in /v1", async () => {
  // the router's own base URL without /v1: GET /models is not its API
  const res = await register({ base_url: back.url, api_key: backKey });
  expect(res.status).toBe(422);
  const { error } = (await res.json()) as ErrorBody;
  expect(error).toMatchObject({ param: "base_url", code: "not_an_openai_base_url" });
  expect(error.message).toContain(`${back.url}/models`);
  expect(error.message).toContain(`try ${back.url}/v1`);
});

test("a runtime that cannot be reached is named by the URL tried, as a 502", async () => {
  const port = await freePort();
  const res = await agents({ machine_name: "gone", ip_address: "127.0.0.1", runtime_port: port });
  expect(res.status).toBe(502);
  const { error } = (await res.json()) as ErrorBody;
  expect(error).toMatchObject({ code: "upstream_unreachable", param: "base_url" });
  expect(error.message).toContain(`http://127.0.0.1:${port}/v1/models`);
  expect(front.proc.output).not.toMatch(/Invalid URL|Internal error/);
});

/** An agent's heartbeat, with a node token (or another credential, or none). */
const health = (token: string | null, body: unknown) =>
  routerClient(front.url, { token: token ?? undefined }).post("/api/health", body);

test("its agent pushes heartbeats with the node token, and the router shows them", async () => {
  const report = {
    agent_id: extId,
    cpu_usage: 45.5,
    memory_usage: 60.2,
    active_requests: 1,
    gpu_usage: 80,
    gpu_memory_used_bytes: 4e9,
    gpu_memory_total_bytes: 8e9,
    gpu_model: "NVIDIA RTX 4090",
  };
  const ok = await health(nodeToken, report);
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ agent_id: extId, status: "online" });
  expect(await node(extId)).toMatchObject({
    cpu_usage: 45.5,
    memory_usage: 60.2,
    active_requests: 1,
    gpu_available: true,
    gpu_model: "NVIDIA RTX 4090",
    gpus: [{ utilization: 80, vram_used_bytes: 4e9, vram_total_bytes: 8e9 }],
  });
  // still there after the next health check
  const seen = (await node(extId)) as unknown as { last_seen: string };
  await waitFor(async () => ((await node(extId)) as unknown as { last_seen: string }).last_seen !== seen.last_seen, {
    what: "a health check",
  });
  expect(await node(extId)).toMatchObject({ cpu_usage: 45.5, gpu_model: "NVIDIA RTX 4090" });

  const code = async (r: Response) => [r.status, ((await r.json()) as { error: { code: string } }).error.code];
  expect(await code(await health(null, report))).toEqual([401, "invalid_node_token"]);
  expect(await code(await health(frontKey, report))).toEqual([401, "invalid_node_token"]);
  expect(await code(await health(admin, report))).toEqual([401, "invalid_node_token"]);
  expect(await code(await health(`nt-${"A".repeat(43)}`, report))).toEqual([401, "invalid_node_token"]);
  expect(await code(await health(nodeToken, { ...report, agent_id: "ext-other" }))).toEqual([
    401,
    "invalid_node_token",
  ]);
  expect((await health(nodeToken, { ...report, cpu_usage: "lots" })).status).toBe(400);
  expect((await health(nodeToken, { ...report, cpu_usage: 500 })).status).toBe(400);
  expect((await health(nodeToken, { ...report, active_requests: 0 })).status).toBe(200);
});

test("the seed's POST /api/agents registers a runtime by machine name, address and port", async () => {
  const res = await agents({
    machine_name: "gpu-box",
    ip_address: "localhost",
    runtime_port: Number(backEnv.LLM_ROUTER_PORT),
    api_key: backKey,
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { agent_id: string; id: string; status: string; node_token: string };
  expect(body).toMatchObject({
    status: "registered",
    machine_name: "gpu-box",
    base_url: expect.stringContaining("localhost"),
  });
  expect(body.agent_id).toBe(body.id);
  expect(body.node_token).toMatch(/^nt-/);
  expect((await health(body.node_token, { agent_id: body.agent_id, cpu_usage: 1 })).status).toBe(200);
  // a token works only for its own runtime
  expect((await health(body.node_token, { agent_id: extId, cpu_usage: 1 })).status).toBe(401);
  const del = await api().request("DELETE", `/api/nodes/${body.id}`);
  expect(del.status).toBe(200);
});

test("an external runtime cannot be disconnected, only drained or deleted", async () => {
  const r = await api().post(`/api/nodes/${extId}/disconnect`);
  expect(r.status).toBe(409);
  expect(((await r.json()) as { error: { code: string } }).error.code).toBe("node_is_external");
});

test("health checks mark it offline when it stops and online when it returns", async () => {
  const list = (await (await api().get("/api/nodes")).json()) as Array<{ id: string }>;
  const id = list[0].id;
  await back.proc.stop();
  await waitFor(async () => (await node(id)).status === "offline", {
    timeoutMs: 15_000,
    what: "the runtime to be offline",
  });
  const chat = () => user().chat({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
  expect((await chat()).status).toBe(503);

  back = await startRouter("back-again", backEnv);
  await back.proc.waitForOutput(/is online/);
  // its HTTP side answers before its model is loaded: wait for the model, not just for "online"
  await waitFor(
    async () => {
      const n = await node(id);
      return n.status === "online" && n.models.includes(MODEL);
    },
    { timeoutMs: 15_000, what: "the runtime to be back with its model" },
  );
  const res = await chat();
  expect(res.status).toBe(200);
  expect(res.headers.get("x-router-node")).toBe(id);
});

test("a registered runtime survives a restart of the router", async () => {
  await front.proc.stop();
  front = await startRouter("front-again", frontEnv);
  admin = await login(front.url);
  await waitFor(
    async () => {
      const list = (await (await api().get("/api/nodes")).json()) as Array<{
        kind: string;
        status: string;
        models: string[];
      }>;
      return (
        list.length === 1 &&
        list[0].kind === "external" &&
        list[0].status === "online" &&
        list[0].models.includes(MODEL)
      );
    },
    { timeoutMs: 15_000, what: "the runtime to be back in the table" },
  );
  // its agent's token is kept (hashed) across the restart
  expect((await health(nodeToken, { agent_id: extId, cpu_usage: 2 })).status).toBe(200);
  expect(await fs.promises.readFile(`${frontEnv.LLM_ROUTER_DATA_DIR}/node_settings.db`, "utf8")).not.toContain(
    nodeToken,
  );
  const res = await user().chat({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
  expect(res.status).toBe(200);
});

test("a runtime gets the client's own request: tools, response_format and other fields pass through", async () => {
  const standIn = await startOpenAIStandIn();
  try {
    const reg = await register({ base_url: `${standIn.url}/v1`, api_key: OPENAI_TEST_KEY, name: "openai-like" });
    expect(reg.status).toBe(201);
    const client = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: frontKey });
    const tools = [
      {
        type: "function" as const,
        function: {
          name: "get_weather",
          description: "Weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const answer = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools,
      tool_choice: "auto",
      response_format: { type: "text" },
      logprobs: true,
      max_completion_tokens: 50,
    });
    // the stand-in answers a tool call when it was sent tools
    expect(answer.choices[0].message.tool_calls?.[0]).toMatchObject({ type: "function" });
    const sent = standIn.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.body;
    expect(sent).toMatchObject({
      model: "gpt-4o-mini",
      tools,
      tool_choice: "auto",
      response_format: { type: "text" },
      logprobs: true,
      max_completion_tokens: 50,
      stream: false,
    });
    expect(sent.stream_options).toBeUndefined();
    expect(sent.max_tokens).toBeUndefined();

    // image parts and n reach a runtime (a local node would refuse them)
    const image = { type: "image_url" as const, image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } };
    const seen = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, image] }],
      n: 2,
    });
    expect(seen.choices.length).toBeGreaterThan(0);
    const withImage = standIn.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.body;
    expect(withImage.messages[0].content[1]).toEqual(image);
    expect(withImage.n).toBe(2);

    // the Responses API reaches a runtime as the chat request it translates to
    const resp = await client.responses.create({ model: "gpt-4o-mini", input: "Hi there", max_output_tokens: 30 });
    expect(resp.object).toBe("response");
    expect(resp.output_text.length).toBeGreaterThan(0);
    const asChat = standIn.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.body;
    expect(asChat).toMatchObject({ model: "gpt-4o-mini", max_completion_tokens: 30 });
    expect(JSON.stringify(asChat.messages)).toContain("Hi there");

    // streamed: usage is asked for (history counts tokens) but reaches only a client that asked
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text.length).toBeGreaterThan(0);
    const streamed = standIn.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.body;
    expect(streamed).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  } finally {
    await standIn.close();
  }
});

test("a runtime that lists /responses gets Responses requests as they are, hosted tools left out, its events relayed", async () => {
  const standIn = await startOpenAIStandIn();
  try {
    const reg = await register({
      base_url: `${standIn.url}/v1`,
      api_key: OPENAI_TEST_KEY,
      name: "responses-runtime",
      endpoints: ["/responses"],
    });
    expect(reg.status).toBe(201);
    const id = ((await reg.json()) as { id: string }).id;
    // the earlier stand-in serving the same model is gone: only this one serves it
    await waitFor(async () => (await user().models()).find((m) => m.id === "gpt-4o-mini")?.nodes.join() === id, {
      what: "the model served by the new runtime only",
    });
    const sentLast = () => standIn.requests.filter((r) => r.path === "/v1/responses").at(-1)!.body;
    const notes = { type: "function", name: "notes", parameters: { type: "object" } };
    const body = { model: "gpt-4o-mini", input: "Hi", tools: [{ type: "web_search" }, notes], metadata: { a: "b" } };
    const plain = await user().answer("POST", "/v1/responses", body);
    expect(plain.status).toBe(200);
    expect(plain.headers.get("x-router-dropped-tools")).toBe("web_search");
    expect(sentLast()).toEqual({ ...body, tools: [notes] });
    expect(plain.body).toMatchObject({ object: "response", id: expect.stringMatching(/^resp_standin_/) });
    expect((await user().json("GET", `/v1/responses/${plain.body.id}`)).body).toEqual(plain.body);
    expect(standIn.requests.some((r) => r.path === "/v1/chat/completions")).toBe(false);

    // streamed: the runtime's events as it sent them; the continuation carries the conversation (the runtime keeps none)
    const client = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: frontKey, maxRetries: 0 });
    const stream = await client.responses.create({
      model: "gpt-4o-mini",
      input: "More",
      previous_response_id: plain.body.id,
      stream: true,
    });
    const events: Array<{ type: string; sequence_number: number }> = [];
    for await (const ev of stream) events.push(ev);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.at(-1)!.type).toBe("response.completed");
    const sent = sentLast();
    expect(sent.previous_response_id).toBeUndefined();
    expect(sent.input).toEqual([
      { type: "message", role: "user", content: "Hi" },
      { type: "message", role: "assistant", content: plain.body.output[0].content },
      { type: "message", role: "user", content: "More" },
    ]);
  } finally {
    await standIn.close();
  }
});

test("endpoints must list API paths the router knows", async () => {
  for (const endpoints of ["/responses", ["/images"], [1]]) {
    const res = await register({ base_url: "http://127.0.0.1:9/v1", endpoints });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe("endpoints");
  }
});

test("an embedding request that fails on one runtime is retried on another, as chat is", async () => {
  // two runtimes serving the same model: one always fails its embeddings (503), the other answers
  const hits = { failing: 0, working: 0 };
  const runtime = (which: keyof typeof hits) =>
    http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        if (req.url === "/v1/models") {
          res.end(JSON.stringify({ object: "list", data: [{ id: "emb-shared", object: "model", created: 0 }] }));
          return;
        }
        hits[which]++;
        if (which === "failing") {
          res.statusCode = 503;
          res.end(JSON.stringify({ error: { message: "overloaded", type: "server_error" } }));
          return;
        }
        res.end(
          JSON.stringify({
            object: "list",
            data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2] }],
            model: "emb-shared",
            usage: { prompt_tokens: 1, total_tokens: 1 },
          }),
        );
      });
    });
  const servers = [runtime("failing"), runtime("working")];
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))));
  try {
    for (const s of servers) {
      const port = (s.address() as AddressInfo).port;
      expect((await register({ base_url: `http://127.0.0.1:${port}/v1`, name: `emb-${port}` })).status).toBe(201);
    }
    // until the failing one has been picked: every answer is the working one's
    for (let i = 0; i < 20 && hits.failing === 0; i++) {
      const res = await user().post("/v1/embeddings", { model: "emb-shared", input: "hi" });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { data: Array<{ embedding: number[] }> }).data[0].embedding).toEqual([0.1, 0.2]);
    }
    expect(hits.failing).toBeGreaterThan(0);
  } finally {
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
});
