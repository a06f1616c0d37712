/**
 * One process (the embedded default): the official `openai` client against a
 * started router running real llama.cpp on a generated model.
 */
import { gzipSync } from "node:zlib";
import OpenAI from "openai";
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, login, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";

const MODEL = "tiny-chat";
let router: { proc: Proc; url: string };
let client: OpenAI;
let key: string;
/** With the API key. */
let user: RouterClient;

beforeAll(async () => {
  const models = tempDir("models");
  writeModel(models, MODEL);
  writeModel(`${models}/nested`, "other", { seed: 7 });
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_PARALLEL: "2",
    LLM_ROUTER_MAX_BODY_SIZE: "64kb",
  });
  await router.proc.waitForOutput(/Node \S+ \(\S+\) is online/);
  key = await createKey(router.url);
  user = routerClient(router.url, { key });
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: key, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await router?.proc.stop();
});

/** A POST with the API key whose answer must be JSON: `{ status, body }`. */
const post = (path: string, body: string | object, headers: Record<string, string> = {}) =>
  user.json<{ error?: { message: string; type: string; param: string | null; code: string | null } }>(
    "POST",
    path,
    body,
    { headers },
  );

describe("OpenAI client against the embedded router", () => {
  test("lists the models found in the models dir, nested ones by relative path", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id).sort()).toEqual(["nested/other", MODEL]);
    const one = await client.models.retrieve(MODEL);
    expect(one).toMatchObject({ id: MODEL, object: "model", owned_by: "llm-router" });
    // an id with a slash, encoded (as the SDK sends it) or not
    expect((await client.models.retrieve("nested/other")).id).toBe("nested/other");
    const raw = await routerClient(router.url).get("/v1/models/nested/other", { headers: { "x-api-key": key } });
    expect(((await raw.json()) as { id: string }).id).toBe("nested/other");
  });

  test("chat completion returns an OpenAI-shaped answer with usage", async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "Hello!" },
      ],
      max_tokens: 12,
      temperature: 0,
    });
    expect(r.object).toBe("chat.completion");
    expect(r.id).toMatch(/^chatcmpl-/);
    expect(r.model).toBe(MODEL);
    expect(r.choices[0].message.role).toBe("assistant");
    expect(r.choices[0].message.content).toMatch(/^[\x20-\x7e]{12}$/);
    expect(r.choices[0].finish_reason).toBe("length");
    expect(r.usage?.completion_tokens).toBe(12);
    expect(r.usage?.prompt_tokens).toBeGreaterThan(5);
    expect(r.usage?.total_tokens).toBe((r.usage?.prompt_tokens ?? 0) + 12);
  });

  test("more concurrent requests than parallel slots wait their turn and all complete", async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: `q${i}` }],
          max_tokens: 30,
        }),
      ),
    );
    expect(answers.map((a) => a.choices[0].message.content?.length)).toEqual([30, 30, 30, 30, 30, 30]);
    expect(new Set(answers.map((a) => a.id)).size).toBe(6);
  });

  test("greedy decoding with the same input gives the same text", async () => {
    const ask = () =>
      client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "same" }],
        max_tokens: 8,
        temperature: 0,
      });
    const [a, b] = await Promise.all([ask(), ask()]);
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
  });

  test("a stop sequence ends the answer with finish_reason stop", async () => {
    const probe = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "stop test" }],
      max_tokens: 10,
      temperature: 0,
    });
    const text = probe.choices[0].message.content ?? "";
    const stop = text.slice(3, 5);
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "stop test" }],
      max_tokens: 10,
      temperature: 0,
      stop: [stop],
    });
    expect(r.choices[0].finish_reason).toBe("stop");
    expect(r.choices[0].message.content).toBe(text.slice(0, text.indexOf(stop)));
  });

  test("streamed chat arrives as chunks that add up, with usage when asked", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "stream please" }],
      max_tokens: 16,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const content = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id)).toBe(true);
    expect(content).toHaveLength(16);
    expect(chunks.filter((c) => c.choices[0]?.finish_reason === "length")).toHaveLength(1);
    expect(chunks[chunks.length - 1].usage?.completion_tokens).toBe(16);

    const plain = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "stream please" }],
      max_tokens: 16,
      temperature: 0,
    });
    expect(content).toBe(plain.choices[0].message.content);
  });

  test("text completion, plain and streamed", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "Once upon", max_tokens: 6, temperature: 0 });
    expect(r.object).toBe("text_completion");
    expect(r.choices[0].text).toHaveLength(6);
    expect(r.usage?.completion_tokens).toBe(6);

    const stream = await client.completions.create({
      model: MODEL,
      prompt: "Once upon",
      max_tokens: 6,
      temperature: 0,
      stream: true,
    });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.text ?? "";
    expect(text).toBe(r.choices[0].text);
  });

  test("embeddings, as floats and as base64", async () => {
    const r = await client.embeddings.create({ model: MODEL, input: ["alpha", "beta"], encoding_format: "float" });
    expect(r.data).toHaveLength(2);
    expect(r.data[0].embedding.length).toBe(64);
    expect(r.data[0].embedding).not.toEqual(r.data[1].embedding);
    expect(r.usage.prompt_tokens).toBeGreaterThan(0);
    // the SDK asks for base64 by default and decodes it
    const b = await client.embeddings.create({ model: MODEL, input: "alpha" });
    expect(b.data[0].embedding[0]).toBeCloseTo(r.data[0].embedding[0], 5);
  });

  test("legacy /api/chat and /api/generate answer in OpenAI format", async () => {
    const chat = await post("/api/chat", {
      model: MODEL,
      messages: [{ role: "user", content: "Hello!" }],
      max_tokens: 4,
    });
    expect(chat.status).toBe(200);
    expect(chat.body).toMatchObject({ object: "chat.completion", choices: [{ message: { role: "assistant" } }] });
    const gen = await post("/api/generate", { model: MODEL, prompt: "Tell me a joke", max_tokens: 4 });
    expect(gen.status).toBe(200);
    expect(gen.body).toMatchObject({ object: "text_completion", choices: [{ index: 0 }] });
  });

  test("/health and /api/nodes describe the running node", async () => {
    const health = await (await routerClient(router.url).get("/health")).json();
    expect(health).toMatchObject({ status: "ok", nodes: { online: 1, total: 1 } });
    const nodes = await routerClient(router.url, { token: await login(router.url) }).nodes();
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ status: "online", models: ["nested/other", MODEL], capacity: 4 });
  });
});

describe("bad input gets an OpenAI-shaped 4xx and loses nothing", () => {
  const chat = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 };
  const cases: Array<[string, string, string | object, number, string | null, string | null]> = [
    ["malformed JSON", "/v1/chat/completions", '{"model": "x", "messages": [', 400, null, "invalid_json"],
    ["a JSON array body", "/v1/chat/completions", "[1,2]", 400, null, "invalid_request"],
    ["missing messages", "/v1/chat/completions", { model: MODEL }, 400, "messages", "missing_required_parameter"],
    ["empty messages", "/v1/chat/completions", { model: MODEL, messages: [] }, 400, "messages", "invalid_value"],
    [
      "messages of the wrong type",
      "/v1/chat/completions",
      { model: MODEL, messages: "hi" },
      400,
      "messages",
      "invalid_value",
    ],
    [
      "an unknown role",
      "/v1/chat/completions",
      { ...chat, messages: [{ role: "wizard", content: "x" }] },
      400,
      "messages[0].role",
      "invalid_value",
    ],
    ["a numeric model", "/v1/chat/completions", { ...chat, model: 7 }, 400, "model", "invalid_value"],
    ["max_tokens of 0", "/v1/chat/completions", { ...chat, max_tokens: 0 }, 400, "max_tokens", "invalid_value"],
    [
      "max_tokens over the limit",
      "/v1/chat/completions",
      { ...chat, max_tokens: 10_000_000 },
      400,
      "max_tokens",
      "invalid_value",
    ],
    [
      "max_tokens past the context",
      "/v1/chat/completions",
      { ...chat, max_tokens: 5000 },
      400,
      "max_tokens",
      "context_length_exceeded",
    ],
    [
      "a string temperature",
      "/v1/chat/completions",
      { ...chat, temperature: "hot" },
      400,
      "temperature",
      "invalid_value",
    ],
    ["n over the node's parallel slots", "/v1/chat/completions", { ...chat, n: 3 }, 400, "n", "unsupported_parameter"],
    [
      "n on a legacy completion",
      "/v1/completions",
      { model: MODEL, prompt: "p", n: 2 },
      400,
      "n",
      "unsupported_parameter",
    ],
    [
      "an image part for a local model",
      "/v1/chat/completions",
      { ...chat, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:," } }] }] },
      400,
      "messages[0].content[0].type",
      "unsupported_content",
    ],
    ["an unknown model", "/v1/chat/completions", { ...chat, model: "no-such-model" }, 404, "model", "model_not_found"],
    ["missing prompt", "/v1/completions", { model: MODEL }, 400, "prompt", "missing_required_parameter"],
    ["missing input", "/v1/embeddings", { model: MODEL }, 400, "input", "missing_required_parameter"],
    // the model's context is 2048 tokens; a "hello " is 6 of them
    [
      "an embedding input past the context",
      "/v1/embeddings",
      { model: MODEL, input: "hello ".repeat(342) },
      400,
      "input",
      "context_length_exceeded",
    ],
    [
      "5,000 words to embed",
      "/v1/embeddings",
      { model: MODEL, input: "hello ".repeat(5000) },
      400,
      "input",
      "context_length_exceeded",
    ],
    [
      "one input of an array past the context",
      "/v1/embeddings",
      { model: MODEL, input: ["hi", "hello ".repeat(342), "there"] },
      400,
      "input",
      "context_length_exceeded",
    ],
    [
      "a completion prompt past the context",
      "/v1/completions",
      { model: MODEL, prompt: "hello ".repeat(400), max_tokens: 1 },
      400,
      "prompt",
      "context_length_exceeded",
    ],
    [
      "an oversized body",
      "/v1/chat/completions",
      { ...chat, messages: [{ role: "user", content: "x".repeat(100_000) }] },
      413,
      null,
      "request_too_large",
    ],
  ];

  test.each(cases)("%s", async (_name, path, body, status, param, code) => {
    const r = await post(path, body);
    expect(r.status).toBe(status);
    expect(r.body.error).toEqual({ message: expect.any(String), type: expect.any(String), param, code });
    expect(r.body.error?.message.length).toBeGreaterThan(5);
  });

  test.each([
    ["an unknown Content-Encoding", { "content-encoding": "zzz" }, "{}", 415, "unsupported_media_type"],
    [
      "an unknown charset",
      { "content-type": "application/json; charset=klingon" },
      "{}",
      415,
      "unsupported_media_type",
    ],
    ["a gzip body that is not gzip", { "content-encoding": "gzip" }, "not gzip", 400, "invalid_body"],
  ])("%s", async (_name, headers, body, status, code) => {
    const r = await post("/v1/chat/completions", body, headers);
    expect(r.status).toBe(status);
    expect(r.body.error).toEqual({ message: expect.any(String), type: "invalid_request_error", param: null, code });
  });

  test("an embedding input past the context says which one, and how long it may be", async () => {
    const r = await post("/v1/embeddings", { model: MODEL, input: ["hi", "hello ".repeat(342)] });
    expect(r.status).toBe(400);
    expect(r.body.error?.message).toMatch(
      /^input\[1\] is \d+ tokens; at most 2047 fit in this model's context of 2048\.$/,
    );
  });

  test("a gzip-encoded body is read", async () => {
    const res = await user.post("/v1/chat/completions", gzipSync(JSON.stringify(chat)), {
      headers: { "content-encoding": "gzip" },
    });
    expect(res.status).toBe(200);
  });

  test("unknown routes answer 404 in the same shape", async () => {
    const res = await user.get("/v1/nope");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });

  test("an unknown model in GET /v1/models/:id is a 404 model_not_found", async () => {
    const res = await user.get("/v1/models/ghost");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("model_not_found");
  });

  test("after all that the router still serves", async () => {
    expect(router.proc.alive).toBe(true);
    const r = await post("/v1/chat/completions", chat);
    expect(r.status).toBe(200);
    // a refused embedding request leaves the model's embedding queue free
    const e = await client.embeddings.create({ model: MODEL, input: ["hello ".repeat(341), "hi"] });
    expect(e.data).toHaveLength(2);
    expect(router.proc.output).not.toMatch(/Internal error|Unhandled|TypeError/);
  });
});
