/**
 * Tools and structured outputs on local models: the official `openai`
 * client against a router and an inference node over a real NATS server,
 * real llama.cpp on a random-weight model. Grammars make every forced call
 * and every schema answer well-formed whatever the weights; strings in the
 * schemas are bounded (`maxLength`, `enum`) so that generation ends by the
 * grammar, not by max_tokens.
 */
import Ajv from "ajv";
import OpenAI from "openai";
import type { RouterClient } from "../helpers/client";
import { schemaOf, startSmallCluster, TIME_TOOL, WEATHER_TOOL, type SmallCluster } from "../helpers/cluster";
import { waitFor } from "../helpers/wait";

let c: SmallCluster;
let client: OpenAI;
let admin: RouterClient;
const MODEL = "tiny-tools";
const ajv = new Ajv({ strict: false });
const weather = WEATHER_TOOL;
const time = TIME_TOOL;

beforeAll(async () => {
  c = await startSmallCluster("tools", MODEL);
  ({ client, admin } = c);
}, 90_000);

afterAll(async () => {
  await c?.stop();
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
