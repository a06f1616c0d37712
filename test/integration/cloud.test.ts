/**
 * Cloud models behind the same endpoint, against local stand-ins that answer
 * with each provider's documented formats (fixtures in test/fixtures/<provider>,
 * sources noted there), and Anthropic's Messages API in front of a local
 * generated model, with the official openai and @anthropic-ai/sdk clients.
 */
import fs from "node:fs";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import parsePrometheus from "parse-prometheus-text-format";
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, login, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";
import { startAnthropicStandIn } from "../helpers/standins/anthropic";
import { startGoogleStandIn } from "../helpers/standins/google";
import { OPENAI_TEST_KEY, startOpenAIStandIn, type StandIn } from "../helpers/standins/openai";

const LOCAL = "tiny-local";
let router: { proc: Proc; url: string };
let env: Record<string, string>;
let key: string;
/** With the API key. */
let user: RouterClient;
/** With the admin's login. */
let admin: RouterClient;
let client: OpenAI;
const standIns: Record<string, StandIn> = {};
const TOOLS = [
  {
    type: "function" as const,
    function: {
      name: "get_current_weather",
      description: "Get the current weather in a given location",
      parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
    },
  },
];

beforeAll(async () => {
  standIns.openai = await startOpenAIStandIn();
  standIns.google = await startGoogleStandIn();
  standIns.anthropic = await startAnthropicStandIn();
  const models = tempDir("cloud-models");
  writeModel(models, LOCAL);
  env = {
    LLM_NODE_MODELS_DIR: models,
    LLM_ROUTER_DATA_DIR: tempDir("cloud-data"),
    OPENAI_API_KEY: OPENAI_TEST_KEY,
    OPENAI_BASE_URL: standIns.openai.url,
    GOOGLE_API_KEY: "test-google-key",
    GOOGLE_API_BASE_URL: standIns.google.url,
    ANTHROPIC_API_KEY: "test-anthropic-key",
    ANTHROPIC_API_BASE_URL: standIns.anthropic.url,
    GOOGLE_MODELS: "gemini-2.5-flash,gemini-2.5-pro",
    LLM_ROUTER_METRICS_TOKEN: "scrape",
  };
  router = await startRouter("router", env);
  await router.proc.waitForOutput(/is online/);
  key = await createKey(router.url);
  user = routerClient(router.url, { key });
  admin = routerClient(router.url, { token: await login(router.url) });
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: key, maxRetries: 0 });
}, 90_000);

afterAll(async () => {
  await router?.proc.stop();
  await Promise.all(Object.values(standIns).map((s) => s.close()));
});

beforeEach(() => {
  for (const s of Object.values(standIns)) {
    s.queue.length = 0;
    s.requests.length = 0;
  }
});

const MODELS = {
  openai: "openai:gpt-4o-mini",
  google: "google:gemini-2.5-flash",
  anthropic: "anthropic:claude-sonnet-4-5",
};
type P = keyof typeof MODELS;
const providers = Object.keys(MODELS) as P[];

test("/v1/models lists the configured clouds' models beside the local ones", async () => {
  const ids = (await client.models.list()).data.map((m) => m.id);
  expect(ids).toContain(LOCAL);
  expect(ids).toEqual(expect.arrayContaining(["openai:gpt-4o", "google:gemini-2.5-flash", "google:gemini-2.5-pro"]));
  expect(ids.filter((id) => id.startsWith("google:"))).toHaveLength(2);
  expect(ids.some((id) => id.startsWith("anthropic:"))).toBe(true);
});

describe.each(providers)("%s", (p) => {
  test("plain chat comes back in OpenAI's format, the prefix stripped upstream", async () => {
    const r = await client.chat.completions.create({
      model: MODELS[p],
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello" },
      ],
      max_tokens: 50,
      temperature: 0.5,
    });
    expect(r.object).toBe("chat.completion");
    expect(r.model).toBe(MODELS[p]);
    expect(r.choices[0].message.content).toEqual(expect.any(String));
    expect(r.choices[0].message.content!.length).toBeGreaterThan(0);
    expect(r.choices[0].finish_reason).toBe("stop");
    expect(r.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    const sent = standIns[p].requests[0];
    expect(JSON.stringify(sent.body)).not.toContain(`${p}:`);
    expect(JSON.stringify(sent.body)).toContain("Hello");
  });

  test("a stream is OpenAI chunks ending with [DONE], with the same text as the provider sent", async () => {
    const stream = await client.chat.completions.create({
      model: MODELS[p],
      messages: [{ role: "user", content: "Hello" }],
      max_tokens: 50,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const c of stream) {
      expect(c.object).toBe("chat.completion.chunk");
      text += c.choices[0]?.delta?.content ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
      usage = c.usage ?? usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe("stop");
    expect(usage!.completion_tokens).toBeGreaterThan(0);
  });

  test("the Responses API (responses.create and a stream): passed through to OpenAI, translated for the others", async () => {
    const r = await client.responses.create({ model: MODELS[p], instructions: "Be brief.", input: "Hello" });
    expect(r.status).toBe("completed");
    expect(r.model).toBe(MODELS[p]);
    expect(r.output_text.length).toBeGreaterThan(0);
    expect(r.usage!.output_tokens).toBeGreaterThan(0);
    const stream = await client.responses.create({ model: MODELS[p], input: "Hello", stream: true });
    const types: string[] = [];
    let text = "";
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "response.output_text.delta") text += ev.delta;
    }
    expect(types[0]).toBe("response.created");
    expect(types.at(-1)).toBe("response.completed");
    expect(text.length).toBeGreaterThan(0);
  });

  test("tool calls come back as OpenAI tool_calls", async () => {
    const r = await client.chat.completions.create({
      model: MODELS[p],
      messages: [{ role: "user", content: "What's the weather like in Boston today?" }],
      tools: TOOLS,
      tool_choice: "auto",
    });
    const call = r.choices[0].message.tool_calls?.[0];
    expect(r.choices[0].finish_reason).toBe("tool_calls");
    expect(call).toMatchObject({ type: "function", function: { name: expect.any(String) } });
    expect(JSON.parse((call as { function: { arguments: string } }).function.arguments)).toEqual(expect.any(Object));
    expect(JSON.stringify(standIns[p].requests[0].body)).toContain("get_current_weather");
  });

  test("a provider error keeps its status and message; a 429 is retried after Retry-After", async () => {
    const bad = fixtureError(p, 400);
    standIns[p].queue.push({ status: 400, body: bad.body });
    const err = await client.chat.completions
      .create({ model: MODELS[p], messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((err as Error).message).toContain(bad.message);

    standIns[p].queue.push({ status: 429, body: fixtureError(p, 429).body, headers: { "retry-after": "1" } });
    const started = Date.now();
    const ok = await client.chat.completions.create({ model: MODELS[p], messages: [{ role: "user", content: "x" }] });
    expect(ok.choices[0].message.content!.length).toBeGreaterThan(0);
    expect(standIns[p].requests.length).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  test("a client that disconnects mid-stream closes the upstream request", async () => {
    const before = standIns[p].closedEarly;
    const ac = new AbortController();
    const res = await user.chat(
      { model: MODELS[p], messages: [{ role: "user", content: "SLOW please" }], stream: true },
      { signal: ac.signal },
    );
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    ac.abort();
    await waitFor(() => standIns[p].closedEarly === before + 1, { what: "the upstream stream to be closed" });
  });
});

/** The documented error body of a provider for a status, and the message in it. */
function fixtureError(p: P, status: 400 | 429): { body: unknown; message: string } {
  const dir = path.join(__dirname, "../fixtures", p);
  const file = fs.readdirSync(dir).find((f) => f.includes(String(status)) && f.endsWith(".json"))!;
  const { _source: _s, ...body } = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
  void _s;
  const message = (body as { error: { message: string } }).error.message;
  return { body, message };
}

describe("the Responses API passed through to OpenAI", () => {
  const FIXTURES = path.join(__dirname, "../fixtures/openai");
  const lastSent = () => standIns.openai.requests.filter((r) => r.path === "/v1/responses").at(-1)!.body;

  test("the request reaches /v1/responses as sent (hosted tools too); the answer comes back as it is, and is stored", async () => {
    const body = {
      model: MODELS.openai,
      input: "Find today's news.",
      tools: [{ type: "web_search" }, { type: "function", name: "notes", parameters: { type: "object" } }],
      tool_choice: { type: "web_search" },
      include: ["reasoning.encrypted_content"],
      metadata: { team: "news" },
    };
    const res = await user.answer("POST", "/v1/responses", body);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-router-dropped-tools")).toBeNull();
    expect(lastSent()).toEqual({ ...body, model: "gpt-4o-mini" });
    const {
      _source: _s,
      id: _id,
      ...documented
    } = JSON.parse(fs.readFileSync(path.join(FIXTURES, "response.json"), "utf8"));
    void _s;
    void _id;
    expect(res.body).toEqual({ ...documented, id: expect.stringMatching(/^resp_standin_/), model: MODELS.openai });
    expect((await user.json("GET", `/v1/responses/${res.body.id}`)).body).toEqual(res.body);
  });

  test("streamed: OpenAI's events arrive as they are, and GET answers the final one's response", async () => {
    const res = await user.request("POST", "/v1/responses", { model: MODELS.openai, input: "Hi", stream: true });
    expect(res.status).toBe(200);
    const events = (await res.text()).split("\n\n").filter(Boolean);
    const documented = fs
      .readFileSync(path.join(FIXTURES, "response-stream.txt"), "utf8")
      .split("\n\n")
      .filter(Boolean);
    expect(events).toHaveLength(documented.length);
    const dataOf = (e: string) =>
      JSON.parse(
        e
          .split("\n")
          .find((l) => l.startsWith("data: "))!
          .slice(6),
      );
    const got = events.map(dataOf);
    const id = got[0].response.id;
    expect(id).toMatch(/^resp_standin_/);
    documented.map(dataOf).forEach((want, i) => {
      if (want.response) want.response = { ...want.response, id, model: MODELS.openai };
      expect(got[i]).toEqual(want);
      expect(events[i].split("\n")[0]).toBe(`event: ${want.type}`);
    });
    expect((await user.json("GET", `/v1/responses/${id}`)).body).toEqual(got.at(-1).response);
  });

  test("previous_response_id: OpenAI's own goes on at OpenAI; a local model's conversation goes as input", async () => {
    const first = await client.responses.create({ model: MODELS.openai, input: "Hello" });
    await client.responses.create({ model: MODELS.openai, input: "More", previous_response_id: first.id });
    expect(lastSent()).toMatchObject({ previous_response_id: first.id, input: "More" });

    const local = await client.responses.create({ model: LOCAL, input: "Remember 42.", max_output_tokens: 3 });
    await client.responses.create({ model: MODELS.openai, input: "What number?", previous_response_id: local.id });
    const sent = lastSent();
    expect(sent.previous_response_id).toBeUndefined();
    expect(sent.input).toEqual([
      { type: "message", role: "user", content: "Remember 42." },
      {
        type: "message",
        role: "assistant",
        content: [expect.objectContaining({ type: "output_text", text: local.output_text })],
      },
      { type: "message", role: "user", content: "What number?" },
    ]);
  });
});

test("the seed's `ahtnorpic:` alias reaches Anthropic", async () => {
  const r = await client.chat.completions.create({
    model: "ahtnorpic:claude-sonnet-4-5",
    messages: [{ role: "user", content: "Hello" }],
  });
  expect(r.model).toBe("ahtnorpic:claude-sonnet-4-5");
  expect(standIns.anthropic.requests).toHaveLength(1);
  expect(standIns.anthropic.requests[0].body.model).toBe("claude-sonnet-4-5");
});

test("cloud calls are recorded in history (kind cloud) without any key, and counted in /metrics/cloud", async () => {
  await client.chat.completions.create({ model: MODELS.google, messages: [{ role: "user", content: "history me" }] });
  const page = await waitFor(
    async () => {
      const r = await admin.get("/api/dashboard/request-responses?q=history%20me");
      const b = (await r.json()) as { records: Array<Record<string, unknown>> };
      return b.records.length ? b : null;
    },
    { what: "the cloud request's record" },
  );
  expect(page.records[0]).toMatchObject({ kind: "cloud", model: MODELS.google, node_id: "cloud:google", status: 200 });
  const stored = fs.readFileSync(path.join(env.LLM_ROUTER_DATA_DIR, "history.db"), "utf8");
  for (const secret of [OPENAI_TEST_KEY, "test-google-key", "test-anthropic-key", key]) {
    expect(stored).not.toContain(secret);
    expect(router.proc.output).not.toContain(secret);
  }
  const metrics = parsePrometheus(
    await (await routerClient(router.url, { token: "scrape" }).get("/metrics/cloud")).text(),
  );
  const requests = metrics.find((f) => f.name === "cloud_requests_total")!;
  const count = (provider: string, status: string) =>
    Number(requests.metrics.find((m) => m.labels?.provider === provider && m.labels?.status === status)?.value ?? 0);
  expect(count("google", "200")).toBeGreaterThanOrEqual(5);
  expect(count("google", "429")).toBe(1);
  expect(metrics.find((f) => f.name === "cloud_request_latency_seconds")?.type).toBe("HISTOGRAM");
});

test("an API key limited to other models may not use a cloud model", async () => {
  const limited = await createKey(router.url, { allowed_models: [LOCAL] });
  const c = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: limited, maxRetries: 0 });
  const err = await c.chat.completions
    .create({ model: MODELS.openai, messages: [{ role: "user", content: "x" }] })
    .then(() => null)
    .catch((e: unknown) => e as { status: number });
  expect(err?.status).toBe(403);
  expect((await c.models.list()).data.map((m) => m.id)).toEqual([LOCAL]);
});

test("cloud models answer chat only: completions and embeddings are a clear 400", async () => {
  for (const [p, body] of [
    ["/v1/completions", { model: MODELS.openai, prompt: "x" }],
    ["/v1/embeddings", { model: MODELS.openai, input: "x" }],
  ] as const) {
    const r = await user.post(p, body);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("unsupported_model");
  }
});

describe("Anthropic's Messages API in front", () => {
  const anthropic = () => new Anthropic({ baseURL: router.url, apiKey: key, maxRetries: 0 });

  test("the official SDK gets a plain answer from a local generated model", async () => {
    const msg = await anthropic().messages.create({
      model: LOCAL,
      max_tokens: 6,
      system: "You are terse.",
      messages: [{ role: "user", content: "Hello" }],
    });
    expect(msg.type).toBe("message");
    expect(msg.role).toBe("assistant");
    expect(msg.model).toBe(LOCAL);
    expect(msg.stop_reason).toBe("max_tokens");
    expect(msg.content[0]).toMatchObject({ type: "text" });
    expect((msg.content[0] as { text: string }).text).toHaveLength(6);
    expect(msg.usage.output_tokens).toBe(6);
    expect(msg.usage.input_tokens).toBeGreaterThan(0);
  });

  test("and a streamed one, event by event", async () => {
    const stream = anthropic().messages.stream({
      model: LOCAL,
      max_tokens: 5,
      messages: [{ role: "user", content: "Hello" }],
    });
    const events: string[] = [];
    let text = "";
    for await (const ev of stream) {
      events.push(ev.type);
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    const final = await stream.finalMessage();
    expect(events[0]).toBe("message_start");
    expect(events[events.length - 1]).toBe("message_stop");
    expect(events).toContain("message_delta");
    expect(text).toHaveLength(5);
    expect((final.content[0] as { text: string }).text).toBe(text);
    expect(final.stop_reason).toBe("max_tokens");
    expect(final.usage.output_tokens).toBe(5);
  });

  test("a cloud model through /v1/messages, and errors in Anthropic's shape", async () => {
    const msg = await anthropic().messages.create({
      model: MODELS.google,
      max_tokens: 50,
      messages: [{ role: "user", content: "Hello" }],
    });
    expect((msg.content[0] as { text: string }).text.length).toBeGreaterThan(0);
    const err = await anthropic()
      .messages.create({ model: LOCAL, messages: [{ role: "user", content: "x" }] } as unknown as Parameters<
        ReturnType<typeof anthropic>["messages"]["create"]
      >[0])
      .catch((e: unknown) => e as InstanceType<typeof Anthropic.APIError>);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect((err as Error).message).toContain("max_tokens");
    // the body itself, as Anthropic shapes errors
    const raw = await routerClient(router.url).post(
      "/v1/messages",
      { model: LOCAL, messages: [{ role: "user", content: "x" }] },
      { headers: { "x-api-key": key, "anthropic-version": "2023-06-01" } },
    );
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error", message: expect.stringContaining("max_tokens") },
    });
  });
});

test("a provider without its key is a clear 400 naming the variable", async () => {
  const bare = await startRouter("bare-router", { SERVICES: "router", LLM_ROUTER_DATA_DIR: tempDir("cloud-bare") });
  try {
    const r = await routerClient(bare.url, { key: await createKey(bare.url) }).chat({
      model: "google:gemini-2.5-flash",
      messages: [{ role: "user", content: "x" }],
    });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("provider_not_configured");
    expect(body.error.message).toContain("GOOGLE_API_KEY");
  } finally {
    await bare.proc.stop();
  }
});
