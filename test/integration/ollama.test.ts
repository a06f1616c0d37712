/**
 * Ollama's API on its own listener (LLM_ROUTER_OLLAMA_PORT), driven by the
 * official `ollama` npm client, in front of a real NATS cluster whose node
 * runs a generated model on node-llama-cpp: list, show, ps, version, chat
 * plain and streamed, generate (chat and raw), embed, tools, JSON `format`;
 * the same API keys and history; Ollama-shaped errors for what it cannot
 * take.
 */
import { Ollama } from "ollama";
import { routerClient } from "../helpers/client";
import { startSmallCluster, WEATHER_TOOL, type SmallCluster } from "../helpers/cluster";
import { freePort } from "../helpers/procs";
import { waitFor } from "../helpers/wait";
import Ajv from "ajv";
import { OPENAI_TEST_KEY, startOpenAIStandIn, type StandIn } from "../helpers/standins/openai";

const MODEL = "tiny-ollama";
let c: SmallCluster;
let ollama: Ollama;
let base: string;
/** OpenAI's API as documented (test/fixtures/openai): a model that calls the tool it is given. */
let openai: StandIn;

beforeAll(async () => {
  const port = await freePort();
  openai = await startOpenAIStandIn();
  c = await startSmallCluster("ollama", MODEL, {
    router: { LLM_ROUTER_OLLAMA_PORT: String(port), OPENAI_API_KEY: OPENAI_TEST_KEY, OPENAI_BASE_URL: openai.url },
  });
  await c.router.waitForOutput(/Ollama API listening on http:\/\/\S+/);
  base = `http://127.0.0.1:${port}`;
  ollama = new Ollama({ host: base, headers: { Authorization: `Bearer ${c.key}` } });
}, 120_000);

afterAll(async () => {
  await c?.stop();
  await openai?.close();
});

test("list, show, ps and version; the root says Ollama is running", async () => {
  expect(await (await fetch(base)).text()).toBe("Ollama is running");
  const { version } = await ollama.version();
  expect(version).toMatch(/^\d+\.\d+\.\d+$/);
  const tags = await ollama.list();
  const entry = tags.models.find((m) => m.name === MODEL)!;
  expect(entry).toMatchObject({ model: MODEL, details: { format: "gguf" } });
  expect(entry.size).toBeGreaterThan(0);
  expect(entry.digest).toMatch(/^[0-9a-f]{64}$/);
  const shown = await ollama.show({ model: `${MODEL}:latest` });
  expect(shown.details.format).toBe("gguf");
  expect((shown.model_info as unknown as Record<string, number>)["general.context_length"]).toBe(4096);
  const ps = await ollama.ps();
  expect(ps.models.map((m) => m.name)).toContain(MODEL);
});

test("chat, whole and streamed as NDJSON, with counts, durations and done_reason", async () => {
  const whole = await ollama.chat({
    model: MODEL,
    messages: [{ role: "user", content: "Hello" }],
    options: { num_predict: 8, temperature: 0, seed: 1 },
  });
  expect(whole.message.role).toBe("assistant");
  expect(whole.done).toBe(true);
  expect(whole.done_reason).toBe("length");
  expect(whole.eval_count).toBe(8);
  expect(whole.prompt_eval_count).toBeGreaterThan(0);
  expect(whole.total_duration).toBeGreaterThan(0);

  const parts: string[] = [];
  let last: { done: boolean; done_reason?: string; eval_count?: number } | undefined;
  const stream = await ollama.chat({
    model: MODEL,
    messages: [{ role: "user", content: "Hello" }],
    stream: true,
    options: { num_predict: 8, temperature: 0, seed: 1 },
  });
  for await (const part of stream) {
    if (!part.done) parts.push(part.message.content);
    last = part;
  }
  expect(last).toMatchObject({ done: true, done_reason: "length", eval_count: 8 });
  // the same seed and temperature 0: the same answer, streamed or not
  expect(parts.join("")).toBe(whole.message.content);
  expect(parts.length).toBeGreaterThan(1);
});

test("generate: a chat turn after the system prompt, raw text, and the empty prompt that loads", async () => {
  const g = await ollama.generate({ model: MODEL, prompt: "Once", system: "Be brief.", options: { num_predict: 5 } });
  expect(g).toMatchObject({ model: MODEL, done: true, done_reason: "length", eval_count: 5 });
  expect(typeof g.response).toBe("string");
  const raw = await ollama.generate({
    model: MODEL,
    prompt: "Once upon",
    raw: true,
    stream: true,
    options: { num_predict: 4 },
  });
  let text = "";
  for await (const part of raw) text += part.response;
  expect(text.length).toBeGreaterThan(0);
  const load = await ollama.generate({ model: MODEL, prompt: "" });
  expect(load).toMatchObject({ done: true, done_reason: "load", response: "" });
});

test("embed: one text or several, one vector each", async () => {
  const one = await ollama.embed({ model: MODEL, input: "hello" });
  expect(one.embeddings).toHaveLength(1);
  expect(one.embeddings[0].length).toBe(64);
  const two = await ollama.embed({ model: MODEL, input: ["a", "b"] });
  expect(two.embeddings).toHaveLength(2);
  expect(two.prompt_eval_count).toBeGreaterThan(0);
  const legacy = await ollama.embeddings({ model: MODEL, prompt: "hello" });
  expect(legacy.embedding).toHaveLength(64);
});

test("format: a JSON schema the answer follows; a conversation with a tool call and its result goes on, on the local model", async () => {
  const schema = {
    type: "object",
    properties: { n: { type: "integer" }, ok: { type: "boolean" } },
    required: ["n", "ok"],
  };
  const formatted = await ollama.chat({
    model: MODEL,
    messages: [{ role: "user", content: "Give me JSON" }],
    format: schema,
    options: { num_predict: 60 },
  });
  expect(new Ajv().validate(schema, JSON.parse(formatted.message.content))).toBe(true);

  // a conversation with a call and its result goes on
  const after = await ollama.chat({
    model: MODEL,
    messages: [
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius", days: 1 } } }],
      },
      { role: "tool", content: '{"temp": 20}', tool_name: "get_weather" } as never,
    ],
    tools: [WEATHER_TOOL as never],
    options: { num_predict: 4 },
  });
  expect(after.done).toBe(true);
}, 120_000);

test("a tool call in Ollama's shape: arguments as an object, no ids; the client sends it back with the result", async () => {
  const r = await ollama.chat({
    model: "openai:gpt-4o-mini",
    messages: [{ role: "user", content: "What is the weather in Boston?" }],
    tools: [WEATHER_TOOL as never],
    stream: false,
  });
  const call = r.message.tool_calls![0];
  expect(call.function.name).toBe("get_current_weather");
  expect(call.function.arguments).toEqual({ location: "Boston, MA" });
  expect(r.done_reason).toBe("stop");
  // the client's next turn, as Ollama's clients write it: the call (no id) and the tool's result
  await ollama.chat({
    model: "openai:gpt-4o-mini",
    messages: [
      { role: "user", content: "What is the weather in Boston?" },
      r.message,
      { role: "tool", content: "22 C" },
    ],
    stream: false,
  });
  const sent = openai.requests[openai.requests.length - 1].body;
  expect(sent.messages[1].tool_calls[0]).toMatchObject({
    type: "function",
    function: { name: "get_current_weather", arguments: JSON.stringify({ location: "Boston, MA" }) },
  });
  expect(sent.messages[2]).toEqual({ role: "tool", tool_call_id: sent.messages[1].tool_calls[0].id, content: "22 C" });
});

test("API keys as on /v1: none is a 401, in Ollama's error shape; requests are in history", async () => {
  const anon = new Ollama({ host: base });
  await expect(anon.list()).rejects.toMatchObject({ status_code: 401 });
  const r = await fetch(`${base}/api/tags`);
  expect(r.status).toBe(401);
  expect(Object.keys((await r.json()) as object)).toEqual(["error"]);
  const rec = await waitFor(async () => {
    const list = await c.admin.json("GET", "/api/dashboard/request-responses?per_page=50");
    return (
      list.body.records.find(
        (x: { endpoint: string; model: string }) => x.endpoint === "ollama:/api/chat" && x.model === MODEL,
      ) ?? null
    );
  });
  expect(rec).toMatchObject({ model: MODEL, status: 200 });
});

test("what it cannot take: a 4xx with {error}, naming it", async () => {
  const key = { authorization: `Bearer ${c.key}`, "content-type": "application/json" };
  const post = async (path: string, body: string) => {
    const r = await fetch(`${base}${path}`, { method: "POST", headers: key, body });
    return { status: r.status, body: (await r.json()) as { error: string } & object };
  };
  const chat = (extra: object) =>
    JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x" }], stream: false, ...extra });
  const cases: Array<[string, string, string, RegExp]> = [
    ["malformed JSON", "/api/chat", '{"model": ', /JSON/],
    ["an unknown option", "/api/chat", chat({ options: { num_gpu: 99 } }), /num_gpu/],
    [
      "an invalid format schema",
      "/api/chat",
      chat({ format: { type: "object", properties: { a: { type: "nonsense" } } } }),
      /format|schema|type/i,
    ],
    ["format that is no schema", "/api/chat", chat({ format: 42 }), /format/],
    ["an unknown field", "/api/chat", chat({ temperature: 1 }), /temperature/],
    ["no messages", "/api/chat", JSON.stringify({ model: MODEL, messages: [] }), /messages/],
    ["think", "/api/chat", chat({ think: true }), /think/],
    [
      "an unknown model",
      "/api/chat",
      JSON.stringify({ model: "nope", messages: [{ role: "user", content: "x" }] }),
      /nope/,
    ],
    [
      "a template",
      "/api/generate",
      JSON.stringify({ model: MODEL, prompt: "x", template: "{{ .Prompt }}" }),
      /template/,
    ],
    ["embed without input", "/api/embed", JSON.stringify({ model: MODEL, input: [] }), /input/],
  ];
  for (const [what, path, body, message] of cases) {
    const r = await post(path, body);
    expect({ what, status: r.status >= 400 && r.status < 500, keys: Object.keys(r.body) }).toEqual({
      what,
      status: true,
      keys: ["error"],
    });
    expect(r.body.error).toMatch(message);
  }
  expect((await fetch(`${base}/api/nope`, { headers: key })).status).toBe(404);
  expect((await fetch(`${base}/api/chat`, { headers: key })).status).toBe(405);
  // the main port's /api/chat is the seed's, in OpenAI's format, untouched
  const seed = await routerClient(c.url, { key: c.key }).json("POST", "/api/chat", {
    model: MODEL,
    messages: [{ role: "user", content: "x" }],
    max_tokens: 2,
  });
  expect(seed.body.object).toBe("chat.completion");
});
