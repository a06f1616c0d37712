/**
 * Tools and structured outputs on local models: the official `openai`
 * client against a router and an inference node over a real NATS server,
 * real llama.cpp on a random-weight model. Grammars make every forced call
 * and every schema answer well-formed whatever the weights; strings in the
 * schemas are bounded (`maxLength`, `enum`) so that generation ends by the
 * grammar, not by max_tokens.
 */
import Anthropic from "@anthropic-ai/sdk";
import { Agent, OpenAIChatCompletionsModel, run, setTracingDisabled, tool } from "@openai/agents";
import Ajv from "ajv";
import OpenAI from "openai";
import type { ChatCompletionTool } from "openai/resources/chat/completions";
import { z } from "zod";
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, login, startCli, startNats, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-tools";
let nats: { proc: Proc; url: string };
let node: Proc;
let router: { proc: Proc; url: string };
let client: OpenAI;
let key: string;
let user: RouterClient;
let admin: RouterClient;
const ajv = new Ajv({ strict: false });

const weather: ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", maxLength: 16 },
        unit: { enum: ["celsius", "fahrenheit"] },
        days: { type: "integer" },
      },
      required: ["city", "unit", "days"],
      additionalProperties: false,
    },
  },
};
const time: ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_time",
    description: "The time in a zone",
    parameters: { type: "object", properties: { zone: { type: "string", maxLength: 8 } }, required: ["zone"] },
  },
};
const schemaOf = (t: ChatCompletionTool) => (t as { function: { parameters: object } }).function.parameters;

beforeAll(async () => {
  nats = await startNats();
  const cluster = { TRANSPORTER: nats.url, HEARTBEAT_INTERVAL: "1", HEARTBEAT_TIMEOUT: "3" };
  const models = tempDir("tools-models");
  // the function-calling instructions of the chat template take ~1,000 tokens
  writeModel(models, MODEL, { contextLength: 4096 });
  node = startCli("node-tools", {
    ...cluster,
    SERVICES: "inference",
    NODEID: "node-tools",
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_PARALLEL: "2",
    LLM_NODE_CONTEXT_SIZE: "4096",
  });
  router = await startRouter("router", { ...cluster, SERVICES: "router", NODEID: "router-tools" });
  key = await createKey(router.url);
  user = routerClient(router.url, { key });
  admin = routerClient(router.url, { token: await login(router.url) });
  client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: key, maxRetries: 0 });
  await waitFor(async () => (await user.models()).some((m) => m.id === MODEL), {
    timeoutMs: 60_000,
    what: "the node serving the model",
  });
}, 90_000);

afterAll(async () => {
  await Promise.all([router?.proc.stop(), node?.stop()]);
  await nats?.proc.stop();
});

describe("tool calls on a local model", () => {
  test("tool_choice required: a well-formed call whose arguments validate against the function's schema", async () => {
    const validate = ajv.compile(schemaOf(weather));
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "What's the weather in Paris?" }],
        tools: [weather],
        tool_choice: "required",
        seed,
        temperature: 1,
        max_tokens: 200,
      });
      const choice = r.choices[0];
      expect(choice.finish_reason).toBe("tool_calls");
      expect(choice.message.content).toBeNull();
      expect(choice.message.tool_calls).toHaveLength(1);
      const call = choice.message.tool_calls![0] as {
        id: string;
        type: string;
        function: { name: string; arguments: string };
      };
      expect(call.id).toMatch(/^call_/);
      expect(call.type).toBe("function");
      expect(call.function.name).toBe("get_weather");
      const args = JSON.parse(call.function.arguments);
      expect(validate(args)).toBe(true);
      expect(Number.isInteger(args.days)).toBe(true);
      expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    }
  });

  test("a named function, streamed: delta.tool_calls fragments with index, then finish_reason tool_calls", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "time?" }],
      tools: [weather, time],
      tool_choice: { type: "function", function: { name: "get_time" } },
      stream: true,
      seed: 4,
      temperature: 1,
      max_tokens: 200,
    });
    let id = "";
    let name = "";
    let args = "";
    let finish: string | null = null;
    let first = true;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (first) expect(choice.delta.role).toBe("assistant");
      first = false;
      for (const d of choice.delta.tool_calls ?? []) {
        expect(d.index).toBe(0);
        if (d.id) id = d.id;
        if (d.function?.name) name += d.function.name;
        args += d.function?.arguments ?? "";
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    expect(finish).toBe("tool_calls");
    expect(id).toMatch(/^call_/);
    expect(name).toBe("get_time");
    expect(ajv.validate(schemaOf(time), JSON.parse(args))).toBe(true);
  });

  test("the SDK's stream helper assembles the same call", async () => {
    const runner = client.chat.completions.stream({
      model: MODEL,
      messages: [{ role: "user", content: "weather?" }],
      tools: [weather],
      tool_choice: "required",
      seed: 9,
      temperature: 1,
      max_tokens: 200,
    });
    const done = await runner.finalChatCompletion();
    const call = done.choices[0].message.tool_calls![0] as { function: { name: string; arguments: string } };
    expect(call.function.name).toBe("get_weather");
    expect(ajv.validate(schemaOf(weather), JSON.parse(call.function.arguments))).toBe(true);
  });

  test("an agent loop: call → the tool runs → its answer goes back with the assistant's tool_calls → a final answer", async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather in Oslo?" }];
    const first = await client.chat.completions.create({
      model: MODEL,
      messages,
      tools: [weather],
      tool_choice: "required",
      seed: 5,
      temperature: 1,
      max_tokens: 200,
    });
    const assistant = first.choices[0].message;
    messages.push(assistant);
    for (const call of assistant.tool_calls ?? []) {
      const args = JSON.parse((call as { function: { arguments: string } }).function.arguments);
      messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify({ city: args.city, temp: 21 }) });
    }
    const answer = (conversation: OpenAI.Chat.ChatCompletionMessageParam[]) =>
      client.chat.completions.create({
        model: MODEL,
        messages: conversation,
        tools: [weather],
        tool_choice: "none",
        max_tokens: 8,
      });
    const final = await answer(messages);
    expect(final.choices[0].message.tool_calls ?? []).toHaveLength(0);
    expect(final.choices[0].message.content).toMatch(/^[\x20-\x7e]{8}$/);
    // the call and its result are rendered into the prompt (the model's template), not dropped
    const without = await answer(messages.slice(0, 1));
    const rendered = JSON.stringify(assistant.tool_calls) + JSON.stringify(messages.slice(2));
    expect(final.usage!.prompt_tokens - without.usage!.prompt_tokens).toBeGreaterThan(rendered.length / 4);
  });

  test("parallel_tool_calls false: exactly one call; with several tools the name is one of them", async () => {
    for (const seed of [11, 12]) {
      const r = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "both?" }],
        tools: [weather, time],
        tool_choice: "required",
        parallel_tool_calls: false,
        seed,
        temperature: 1,
        max_tokens: 200,
      });
      const calls = r.choices[0].message.tool_calls!;
      expect(calls).toHaveLength(1);
      const fn = (calls[0] as { function: { name: string; arguments: string } }).function;
      expect(["get_weather", "get_time"]).toContain(fn.name);
      expect(ajv.validate(schemaOf(fn.name === "get_time" ? time : weather), JSON.parse(fn.arguments))).toBe(true);
    }
  });

  test("the tool call is recorded in history, request and assembled answer", async () => {
    const marker = `history-${Date.now()}`;
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: marker }],
      tools: [time],
      tool_choice: "required",
      stream: true,
      seed: 3,
      temperature: 1,
      max_tokens: 200,
    });
    for await (const chunk of stream) void chunk;
    const record = await waitFor(
      async () => {
        const page = await admin.json("GET", `/api/dashboard/request-responses?q=${marker}`);
        return page.body.records[0];
      },
      { timeoutMs: 10_000, what: "the request in history" },
    );
    const full = (await admin.json("GET", `/api/dashboard/request-responses/${record.id}`)).body;
    expect(full.request_body.tools[0].function.name).toBe("get_time");
    expect(full.response_body.finish_reason).toBe("tool_calls");
    expect(full.response_body.tool_calls[0].function.name).toBe("get_time");
    expect(JSON.parse(full.response_body.tool_calls[0].function.arguments)).toHaveProperty("zone");
  });
});

describe("structured outputs on a local model", () => {
  const schema = {
    type: "object",
    properties: {
      name: { type: "string", maxLength: 10 },
      age: { type: "integer" },
      score: { type: "number" },
      tags: { type: "array", items: { enum: ["a", "b", "c"] }, maxItems: 3 },
      nickname: { type: ["string", "null"], maxLength: 6 },
      address: {
        type: "object",
        properties: { zip: { type: "string", maxLength: 5 }, ok: { type: "boolean" } },
        required: ["zip", "ok"],
        additionalProperties: false,
      },
    },
    required: ["name", "age", "score", "tags", "nickname", "address"],
    additionalProperties: false,
  };

  test("json_schema: the content parses and validates (ajv) over many seeds; numbers are finite", async () => {
    const validate = ajv.compile(schema);
    for (let seed = 1; seed <= 12; seed++) {
      const r = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "a person" }],
        response_format: { type: "json_schema", json_schema: { name: "person", schema, strict: true } },
        seed,
        temperature: 1,
        max_tokens: 300,
      });
      expect(r.choices[0].finish_reason).toBe("stop");
      const value = JSON.parse(r.choices[0].message.content!);
      expect({ seed, valid: validate(value), errors: validate.errors }).toEqual({ seed, valid: true, errors: null });
      expect(Number.isFinite(value.score)).toBe(true);
      expect(Number.isInteger(value.age)).toBe(true);
    }
  });

  test("json_object: the answer is JSON (an object) whenever the grammar ends it", async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "json please" }],
      response_format: { type: "json_object" },
      seed: 2,
      temperature: 1,
      max_tokens: 60,
    });
    const text = r.choices[0].message.content!;
    expect(text.trimStart().startsWith("{")).toBe(true);
    if (r.choices[0].finish_reason === "stop") expect(typeof JSON.parse(text)).toBe("object");
    else expect(r.choices[0].finish_reason).toBe("length");
  });
});

describe("nothing silently dropped: a 400 naming what a local node cannot do", () => {
  const ask = (extra: Record<string, unknown>) =>
    user.answer("POST", "/v1/chat/completions", {
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 2,
      ...extra,
    });
  const cases: Array<[string, Record<string, unknown>, string, string]> = [
    ["logprobs", { logprobs: true }, "logprobs", "unsupported_parameter"],
    ["top_logprobs", { top_logprobs: 2 }, "top_logprobs", "unsupported_parameter"],
    ["n over the node's parallel slots", { n: 3 }, "n", "unsupported_parameter"],
    [
      "logit_bias naming a token the model does not have",
      { logit_bias: { "50256": -100 } },
      "logit_bias",
      "invalid_value",
    ],
    ["audio", { audio: { voice: "alloy", format: "mp3" } }, "audio", "unsupported_parameter"],
    ["functions (deprecated)", { functions: [{ name: "f" }] }, "functions", "unsupported_parameter"],
    ["an unknown parameter", { top_k: 5 }, "top_k", "unsupported_parameter"],
    [
      "a schema keyword the grammar cannot express",
      {
        response_format: {
          type: "json_schema",
          json_schema: { name: "x", schema: { type: "object", properties: { n: { type: "integer", minimum: 3 } } } },
        },
      },
      "response_format.json_schema.schema.properties.n.minimum",
      "unsupported_schema_keyword",
    ],
    [
      "a tool schema keyword the grammar cannot express",
      {
        tools: [
          {
            type: "function",
            function: {
              name: "f",
              parameters: { type: "object", properties: { s: { type: "string", pattern: "^a" } } },
            },
          },
        ],
      },
      "tools[0].function.parameters.properties.s.pattern",
      "unsupported_schema_keyword",
    ],
    [
      "response_format with tools the model may or may not call",
      { tools: [weather], response_format: { type: "json_object" } },
      "response_format",
      "unsupported_parameter",
    ],
  ];
  test.each(cases)("%s", async (_what, extra, param, code) => {
    const r = await ask(extra);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param, code, type: "invalid_request_error" });
  });

  test("logit_bias is honoured: +100 on one token (byte 'a' of the generated vocabulary) makes it the whole answer", async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "anything" }],
      logit_bias: { "100": 100 },
      temperature: 1,
      seed: 3,
      max_tokens: 12,
    });
    expect(r.choices[0].message.content).toBe("a".repeat(12));
  });

  test("n: 2 runs two generations at once and answers two choices, plain and streamed", async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "two" }],
      n: 2,
      seed: 1,
      temperature: 1,
      max_tokens: 5,
    });
    expect(r.choices.map((c) => [c.index, c.finish_reason])).toEqual([
      [0, "length"],
      [1, "length"],
    ]);
    expect(r.usage!.completion_tokens).toBe(10);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "two" }],
      n: 2,
      max_tokens: 4,
      stream: true,
    });
    const texts = ["", ""];
    const finished: number[] = [];
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        texts[c.index] += c.delta.content ?? "";
        if (c.finish_reason) finished.push(c.index);
      }
    }
    expect(finished.sort()).toEqual([0, 1]);
    expect(texts.map((t) => t.length)).toEqual([4, 4]);
  });

  test("defaults are not refused (n 1, logprobs false, modalities text) and labels are ignored", async () => {
    const r = await ask({
      n: 1,
      logprobs: false,
      modalities: ["text"],
      store: false,
      metadata: { a: "b" },
      user: "u1",
    });
    expect(r.status).toBe(200);
  });

  test("bad tool input: unknown function in tool_choice, an answer to no call, an unanswered call", async () => {
    const named = await ask({ tools: [weather], tool_choice: { type: "function", function: { name: "nope" } } });
    expect(named.status).toBe(400);
    expect(named.body.error.param).toBe("tool_choice.function.name");
    const orphan = await ask({
      messages: [
        { role: "user", content: "hi" },
        { role: "tool", tool_call_id: "call_x", content: "42" },
      ],
    });
    expect(orphan.status).toBe(400);
    expect(orphan.body.error.param).toBe("messages[1].tool_call_id");
    const unanswered = await ask({
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
        { role: "user", content: "and?" },
      ],
    });
    expect(unanswered.status).toBe(400);
    expect(unanswered.body.error.code).toBe("invalid_tool_call_id");
    const loop = await ask({
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "loop",
          schema: {
            $defs: { a: { $ref: "#/$defs/b" }, b: { $ref: "#/$defs/a" } },
            type: "object",
            properties: { x: { $ref: "#/$defs/a" } },
          },
        },
      },
    });
    expect(loop.status).toBe(400);
    expect(loop.body.error.param).toMatch(/^response_format\.json_schema\.schema/);
  });
});

describe("Anthropic's Messages API on a local model (@anthropic-ai/sdk)", () => {
  const anthropic = () => new Anthropic({ baseURL: router.url, apiKey: key, maxRetries: 0 });
  const tool = {
    name: "get_weather",
    description: "The weather in a city",
    input_schema: schemaOf(weather) as Anthropic.Tool.InputSchema,
  };

  test("a forced tool: a tool_use block whose input validates, stop_reason tool_use; then a tool_result turn", async () => {
    const first = await anthropic().messages.create({
      model: MODEL,
      max_tokens: 200,
      messages: [{ role: "user", content: "Weather in Rome?" }],
      tools: [tool],
      tool_choice: { type: "tool", name: "get_weather" },
    });
    expect(first.stop_reason).toBe("tool_use");
    const use = first.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
    expect(use.name).toBe("get_weather");
    expect(ajv.validate(schemaOf(weather), use.input)).toBe(true);
    const second = await anthropic().messages.create({
      model: MODEL,
      max_tokens: 6,
      messages: [
        { role: "user", content: "Weather in Rome?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "sunny, 24°C" }] },
      ],
      tools: [tool],
      tool_choice: { type: "none" },
    });
    expect(second.stop_reason).toBe("max_tokens");
    expect(second.content[0]).toMatchObject({ type: "text" });
  });

  test("streamed: input_json_delta events build the same input", async () => {
    const stream = anthropic().messages.stream({
      model: MODEL,
      max_tokens: 200,
      messages: [{ role: "user", content: "Weather?" }],
      tools: [tool],
      tool_choice: { type: "any" },
    });
    let partial = "";
    stream.on("inputJson", (delta) => (partial += delta));
    const msg = await stream.finalMessage();
    expect(msg.stop_reason).toBe("tool_use");
    const use = msg.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
    expect(JSON.parse(partial)).toEqual(use.input);
    expect(ajv.validate(schemaOf(weather), use.input)).toBe(true);
  });
});

describe("the OpenAI Agents SDK (@openai/agents) on a local model", () => {
  test("an agent calls its tool with valid arguments, gets the result back and finishes", async () => {
    setTracingDisabled(true);
    const seen: Array<{ city: string }> = [];
    const getWeather = tool({
      name: "get_weather",
      description: "The weather in a city",
      parameters: z.object({ city: z.string().max(12) }),
      execute: async ({ city }) => {
        seen.push({ city });
        return `sunny in ${city}`;
      },
    });
    const agent = new Agent({
      name: "weather",
      instructions: "Answer with the weather.",
      // the SDK's client is its own openai major: ours speaks the same Chat Completions API
      model: new OpenAIChatCompletionsModel(client as never, MODEL),
      // forced on the first turn; the SDK resets the choice after a tool call, so the next turn answers
      modelSettings: { toolChoice: "required", temperature: 1, maxTokens: 60 },
      tools: [getWeather],
    });
    const result = await run(agent, "Weather in Lima?", { maxTurns: 4 });
    expect(seen).toHaveLength(1);
    expect(typeof seen[0].city).toBe("string");
    expect(seen[0].city.length).toBeLessThanOrEqual(12);
    expect(typeof result.finalOutput).toBe("string");
    const items = result.newItems.map((i) => i.type);
    expect(items).toEqual(["tool_call_item", "tool_call_output_item", "message_output_item"]);
  });
});
