/**
 * What clients send beyond the happy path, on a local model through a real
 * NATS cluster: every parameter a local node cannot honour is a 400 naming
 * it, the ones it can (n, logit_bias) work, bad tool input is refused; and
 * other clients' tool use: the official @anthropic-ai/sdk with tools through
 * /v1/messages, and the OpenAI Agents SDK running a tool-using agent.
 */
import Anthropic from "@anthropic-ai/sdk";
import { Agent, OpenAIChatCompletionsModel, run, setTracingDisabled, tool } from "@openai/agents";
import Ajv from "ajv";
import OpenAI from "openai";
import { z } from "zod";
import type { RouterClient } from "../helpers/client";
import { schemaOf, startSmallCluster, WEATHER_TOOL, type SmallCluster } from "../helpers/cluster";

let c: SmallCluster;
let client: OpenAI;
let user: RouterClient;
let key: string;
let router: { url: string };
const MODEL = "tiny-tools";
const ajv = new Ajv({ strict: false });
const weather = WEATHER_TOOL;

beforeAll(async () => {
  c = await startSmallCluster("clients", MODEL);
  ({ client, user, key } = c);
  router = { url: c.url };
}, 90_000);

afterAll(async () => {
  await c?.stop();
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
