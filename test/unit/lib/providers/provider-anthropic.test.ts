import { readFileSync } from "node:fs";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { createParser } from "eventsource-parser";
import { anthropic, REFUSED, UNSUPPORTED } from "../../../../lib/providers/anthropic";
import * as ingress from "../../../../lib/providers/anthropic-ingress";
import type { OpenAIChatCompletion, OpenAIChatRequest, OpenAIChunk, SseEvent } from "../../../../lib/providers/types";
import { ProviderError } from "../../../../lib/providers/types";
import { waitFor } from "../../../helpers/wait";
import { ANTHROPIC_TEST_KEY, anthropicFixture, startAnthropicStandIn } from "../../../helpers/standins/anthropic";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const cfg = { apiKey: "secret-key", baseUrl: "https://api.anthropic.com" };
const meta = { id: "chatcmpl-abc", model: "anthropic:claude-sonnet-4-5", created: 1_700_000_000 };
const WEATHER = { type: "object", properties: { location: { type: "string" } }, required: ["location"] };
const text = (t: string) => ({ type: "text", text: t });
const user = (content: Json) => ({ role: "user" as const, content });

const body = (req: Partial<OpenAIChatRequest>): Json =>
  anthropic.request({ model: "claude-sonnet-4-5", messages: [user("hi")], ...req }, cfg).body;

function sseEvents(raw: string): SseEvent[] {
  const events: SseEvent[] = [];
  createParser({ onEvent: (e) => events.push({ event: e.event, data: e.data }) }).feed(raw);
  return events;
}
const fixtureEvents = (name: string) =>
  sseEvents(readFileSync(join(__dirname, "../../../fixtures/anthropic", name), "utf8"));

function translate(events: SseEvent[]): OpenAIChunk[] {
  const t = anthropic.stream(meta);
  return [...events.flatMap((e) => t.push(e)), ...t.end()];
}
const contentOf = (chunks: OpenAIChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
const finishes = (chunks: OpenAIChunk[]) =>
  chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean);
const toolDeltas = (chunks: OpenAIChunk[]) => chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);

describe("anthropic request", () => {
  test("posts /v1/messages with x-api-key and anthropic-version; max_tokens always set", () => {
    const up = anthropic.request(
      { model: "claude-sonnet-4-5", messages: [user("hi")] },
      { ...cfg, baseUrl: cfg.baseUrl + "/" },
    );
    expect(up.url).toBe("https://api.anthropic.com/v1/messages");
    expect(up.headers).toEqual({
      "x-api-key": "secret-key",
      "anthropic-version": "2023-06-01",
      "content-type": "application/json",
    });
    expect(up.body).toEqual({ model: "claude-sonnet-4-5", max_tokens: 4096, messages: [user("hi")] });
    expect(body({ max_tokens: 50 }).max_tokens).toBe(50);
    expect(body({ max_tokens: 50, max_completion_tokens: 70 }).max_tokens).toBe(70);
  });

  test("system and developer messages are hoisted; consecutive same-role messages are merged", () => {
    const b = body({
      messages: [
        { role: "system", content: "Be brief." },
        user("Hello"),
        user([text("Anyone there?")]),
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "assistant", content: "Bonjour" },
        { role: "assistant", content: "" },
        user("How are you?"),
        { role: "assistant", content: "Je vais " },
      ],
    });
    expect(b.system).toBe("Be brief.\n\nAnswer in French.");
    expect(b.messages).toEqual([
      user([text("Hello"), text("Anyone there?")]),
      { role: "assistant", content: "Bonjour" },
      user("How are you?"),
      { role: "assistant", content: "Je vais" }, // a final prefill may not end with whitespace
    ]);
  });

  test("sampling: temperature clamped to 1, top_p, stop_sequences, stream, user → metadata", () => {
    const b = body({ temperature: 1.7, top_p: 0.9, stop: ["END", ""], stream: true, user: "u-1" });
    expect(b).toMatchObject({
      temperature: 1,
      top_p: 0.9,
      stop_sequences: ["END"],
      stream: true,
      metadata: { user_id: "u-1" },
    });
    expect(body({ user: "u-1", safety_identifier: "hash-9" }).metadata).toEqual({ user_id: "hash-9" });
    expect(body({ temperature: 0.3, stop: "\n\n" })).toMatchObject({ temperature: 0.3, stop_sequences: ["\n\n"] });
    expect(body({ temperature: null, stream: false })).toEqual(body({}));
  });

  test("images: data URLs go as base64, http URLs as url sources", () => {
    const img = (url: string) => ({ type: "image_url" as const, image_url: { url } });
    const parts = [
      img("data:image/png;base64,iVBORw0KGgo="),
      img("https://x.test/cat.jpg"),
      img("data:image/svg+xml,%3Csvg%2F%3E"),
    ];
    expect(body({ messages: [user([text("What?"), ...parts])] }).messages[0].content).toEqual([
      text("What?"),
      { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
      { type: "image", source: { type: "url", url: "https://x.test/cat.jpg" } },
      { type: "image", source: { type: "base64", media_type: "image/svg+xml", data: btoa("<svg/>") } },
    ]);
  });

  test("tools and tool_choice", () => {
    const tools = [
      { type: "function" as const, function: { name: "get_weather", description: "Weather", parameters: WEATHER } },
      { type: "function" as const, function: { name: "now" } },
    ];
    expect(body({ tools }).tools).toEqual([
      { name: "get_weather", description: "Weather", input_schema: WEATHER },
      { name: "now", input_schema: { type: "object", properties: {} } },
    ]);
    const choice = (tool_choice: OpenAIChatRequest["tool_choice"]) => body({ tools, tool_choice }).tool_choice;
    expect([choice("auto"), choice("required"), choice("none"), choice(undefined)]).toEqual([
      { type: "auto" },
      { type: "any" },
      { type: "none" },
      undefined,
    ]);
    expect(choice({ type: "function", function: { name: "now" } })).toEqual({ type: "tool", name: "now" });
    expect(body({ tool_choice: "auto" })).not.toHaveProperty("tool_choice");
  });

  test("tool calls become tool_use blocks, tool results lead one user turn", () => {
    const call = (id: string, args: string) => ({
      id,
      type: "function" as const,
      function: { name: "get_weather", arguments: args },
    });
    const b = body({
      messages: [
        user("Weather in Paris and Rome?"),
        {
          role: "assistant",
          content: "Checking.",
          tool_calls: [call("call_1", '{"location":"Paris"}'), call("call_2", "no json")],
        },
        { role: "tool", tool_call_id: "call_1", content: "18C" },
        { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: "21C" }] },
        user("Thanks"),
      ],
    });
    expect(b.messages.slice(1)).toEqual([
      {
        role: "assistant",
        content: [
          text("Checking."),
          { type: "tool_use", id: "call_1", name: "get_weather", input: { location: "Paris" } },
          { type: "tool_use", id: "call_2", name: "get_weather", input: {} },
        ],
      },
      user([
        { type: "tool_result", tool_use_id: "call_1", content: "18C" },
        { type: "tool_result", tool_use_id: "call_2", content: "21C" },
        text("Thanks"),
      ]),
    ]);
  });
});

describe("anthropic response", () => {
  test("a text answer; cache tokens count as prompt tokens", () => {
    const out = anthropic.response(anthropicFixture("message-text.json"), meta);
    expect(out).toMatchObject({ id: meta.id, object: "chat.completion", created: meta.created, model: meta.model });
    expect(out.choices).toEqual([
      {
        index: 0,
        message: { role: "assistant", content: "Hi! My name is Claude." },
        logprobs: null,
        finish_reason: "stop",
      },
    ]);
    expect(out.usage).toEqual({ prompt_tokens: 2095, completion_tokens: 503, total_tokens: 2598 });
    const usage = { input_tokens: 3, cache_creation_input_tokens: 10, cache_read_input_tokens: 100 };
    expect(anthropic.response({ content: [], usage }, meta).usage).toEqual({
      prompt_tokens: 113,
      completion_tokens: 0,
      total_tokens: 113,
    });
  });

  test("a tool_use answer", () => {
    const { message, finish_reason } = anthropic.response(anthropicFixture("message-tool-use.json"), meta).choices[0];
    expect(finish_reason).toBe("tool_calls");
    expect(message.content).toBe("I'll check the current weather in San Francisco for you.");
    expect(message.tool_calls).toEqual([
      {
        id: "toolu_01A09q90qw90lq917835lq9",
        type: "function",
        function: { name: "get_weather", arguments: '{"location":"San Francisco, CA","unit":"celsius"}' },
      },
    ]);
  });

  test("stop reasons", () => {
    const reasons = { end_turn: "stop", stop_sequence: "stop", max_tokens: "length", tool_use: "tool_calls" };
    for (const [reason, expected] of Object.entries({ ...reasons, refusal: "content_filter", other: "stop" })) {
      const out = anthropic.response({ content: [text("x")], stop_reason: reason }, meta);
      expect([reason, out.choices[0].finish_reason]).toEqual([reason, expected]);
    }
  });

  test("errorMessage reads Anthropic's error body, or the text", () => {
    expect(anthropic.errorMessage(400, anthropicFixture("error-400-invalid-request.json"))).toBe(
      "max_tokens: Field required",
    );
    expect(anthropic.errorMessage(429, anthropicFixture("error-429-rate-limit.json"))).toMatch(/rate limit/);
    expect(anthropic.errorMessage(502, "  <html>Bad gateway</html>\n")).toBe("<html>Bad gateway</html>");
    expect(anthropic.errorMessage(500, "x".repeat(900))).toHaveLength(500);
    expect(anthropic.errorMessage(503, null)).toBe("Anthropic answered 503.");
  });
});

describe("anthropic stream", () => {
  test("text events become a role chunk, content chunks, a finish chunk and a usage chunk", () => {
    const events = fixtureEvents("stream-text.sse");
    expect(events.map((e) => e.event)).toContain("ping");
    const chunks = translate(events);
    for (const c of chunks)
      expect(c).toMatchObject({ id: meta.id, object: "chat.completion.chunk", model: meta.model });
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.filter((c) => c.choices[0]?.delta.role)).toHaveLength(1);
    expect(contentOf(chunks)).toBe("Hello!");
    expect(finishes(chunks)).toEqual(["stop"]);
    expect(chunks.filter((c) => c.usage)).toEqual([
      { ...chunks.at(-1), choices: [], usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } },
    ]);
  });

  test("a tool_use block becomes tool_calls deltas whose fragments reassemble", () => {
    const chunks = translate(fixtureEvents("stream-tool-use.sse"));
    expect(contentOf(chunks)).toBe("Okay, let's check the weather for San Francisco, CA:");
    const deltas = toolDeltas(chunks);
    const fn = { name: "get_weather", arguments: "" };
    expect(deltas[0]).toEqual({ index: 0, id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", type: "function", function: fn });
    expect(deltas.every((d) => d.index === 0)).toBe(true);
    const args = deltas.map((d) => d.function?.arguments ?? "").join("");
    expect(JSON.parse(args)).toEqual({ location: "San Francisco, CA", unit: "fahrenheit" });
    expect(finishes(chunks)).toEqual(["tool_calls"]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 472, completion_tokens: 89, total_tokens: 561 });
  });

  test("two tool calls get indexes 0 and 1; max_tokens finishes with length; usage once", () => {
    const t = anthropic.stream(meta);
    const d = (o: unknown): SseEvent => ({ data: JSON.stringify(o) });
    const start = (index: number, id: string) => ({
      type: "content_block_start",
      index,
      content_block: { type: "tool_use", id, name: id },
    });
    const chunks = [
      d({ type: "message_start", message: { usage: { input_tokens: 5, output_tokens: 1 } } }),
      d(start(0, "t1")),
      d({ type: "content_block_stop", index: 0 }),
      d(start(1, "t2")),
      d({ type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "{}" } }),
      d({ type: "message_delta", delta: { stop_reason: "max_tokens" }, usage: { output_tokens: 9 } }),
      d({ type: "message_stop" }),
    ].flatMap((e) => t.push(e));
    expect(toolDeltas(chunks).map((c) => [c.index, c.id, c.function?.arguments])).toEqual([
      [0, "t1", ""],
      [1, "t2", ""],
      [1, undefined, "{}"],
    ]);
    expect(finishes(chunks)).toEqual(["length"]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 });
    expect(t.end()).toEqual([]);
  });

  test("a stream cut short still finishes and reports usage", () => {
    const chunks = translate(fixtureEvents("stream-text.sse").slice(0, 4));
    expect(finishes(chunks)).toEqual(["stop"]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 25, completion_tokens: 1, total_tokens: 26 });
  });

  test("an error event throws a ProviderError with the status its type stands for", () => {
    const statuses = { overloaded_error: 529, rate_limit_error: 429, api_error: 500, invalid_request_error: 502 };
    for (const [type, status] of Object.entries(statuses)) {
      const ev = { event: "error", data: JSON.stringify({ type: "error", error: { type, message: "Overloaded" } }) };
      const push = () => anthropic.stream(meta).push(ev);
      expect(push).toThrow(ProviderError);
      expect(push).toThrow(expect.objectContaining({ status, message: "Overloaded", provider: "anthropic" }));
    }
    const t = anthropic.stream(meta);
    const events = fixtureEvents("stream-error-overloaded.sse");
    expect(contentOf(events.slice(0, -1).flatMap((e) => t.push(e)))).toBe("Hel");
    expect(() => t.push(events.at(-1)!)).toThrow(expect.objectContaining({ status: 529, message: "Overloaded" }));
    expect(() => t.push({ data: "{not json" })).toThrow(ProviderError);
  });
});

/** The error body() throws for `req`, or undefined. */
function thrown(req: Partial<OpenAIChatRequest>): Json {
  try {
    body(req);
  } catch (e) {
    return e;
  }
  return undefined;
}

const SUMMARY = {
  type: "object",
  properties: { description: { type: "string" }, estimated_year: { type: "integer" } },
  required: ["description"],
};
const jsonSchema = (schema?: Record<string, unknown>, description?: string): OpenAIChatRequest["response_format"] => ({
  type: "json_schema",
  json_schema: { name: "record_summary", ...(description ? { description } : {}), ...(schema ? { schema } : {}) },
});
const JSON_REQ = {
  model: "claude-sonnet-4-5",
  messages: [user("Describe the image.")],
  response_format: jsonSchema(SUMMARY),
};

describe("anthropic response_format: a forced tool", () => {
  test("json_schema becomes one tool with the schema, forced, one call only", () => {
    const b = body({ response_format: jsonSchema(SUMMARY, "A summary of the image") });
    expect(b.tools).toEqual([{ name: "record_summary", description: "A summary of the image", input_schema: SUMMARY }]);
    expect(b.tool_choice).toEqual({ type: "tool", name: "record_summary", disable_parallel_tool_use: true });
    expect(body({ response_format: jsonSchema() }).tools).toEqual([
      { name: "record_summary", input_schema: { type: "object" } },
    ]);
  });

  test("json_object becomes a forced tool taking any object; text asks for nothing", () => {
    const b = body({ response_format: { type: "json_object" } });
    expect(b.tools).toEqual([
      { name: "json_object", description: "Answer with a JSON object.", input_schema: { type: "object" } },
    ]);
    expect(b.tool_choice).toEqual({ type: "tool", name: "json_object", disable_parallel_tool_use: true });
    expect(body({ response_format: { type: "text" } })).toEqual(body({}));
    expect(body({ response_format: null })).toEqual(body({}));
  });

  test("response_format with tools is a 400 naming response_format", () => {
    const tools = [{ type: "function" as const, function: { name: "now" } }];
    const err = thrown({ tools, response_format: { type: "json_object" } });
    expect(err).toMatchObject({ code: 400, type: "unsupported_parameter", data: { param: "response_format" } });
    expect(err.message).toMatch(/cannot combine 'response_format' with 'tools'/);
    expect(thrown({ tools: [], response_format: { type: "json_object" } })).toBeUndefined();
    expect(thrown({ tools, response_format: { type: "text" } })).toBeUndefined();
  });

  test("the forced tool's input comes back as the message content, finishing with stop", () => {
    const fixture = anthropicFixture("message-json-tool.json");
    const out = anthropic.response(fixture, meta, JSON_REQ);
    const input = (fixture.content as Json)[0].input;
    expect(out.choices).toEqual([
      {
        index: 0,
        message: { role: "assistant", content: JSON.stringify(input) },
        logprobs: null,
        finish_reason: "stop",
      },
    ]);
    expect(out.usage).toEqual({ prompt_tokens: 1203, completion_tokens: 112, total_tokens: 1315 });
    // json_object the same; without response_format the same answer is a tool call
    const obj = anthropic.response(fixture, meta, { ...JSON_REQ, response_format: { type: "json_object" } });
    expect(JSON.parse(obj.choices[0].message.content!)).toEqual(input);
    const plain = anthropic.response(fixture, meta, { ...JSON_REQ, response_format: { type: "text" } });
    expect(plain.choices[0]).toMatchObject({ finish_reason: "tool_calls", message: { content: null } });
    expect(anthropic.response(fixture, meta).choices[0].message.tool_calls).toHaveLength(1);
  });

  test("a JSON answer cut by max_tokens finishes with length; without a tool_use the text is the content", () => {
    const use = { type: "tool_use", id: "toolu_1", name: "record_summary", input: { description: "A li" } };
    const cut = anthropic.response({ content: [use], stop_reason: "max_tokens" }, meta, JSON_REQ).choices[0];
    expect(cut).toMatchObject({ message: { content: '{"description":"A li"}' }, finish_reason: "length" });
    const refused = anthropic.response(
      { content: [text("I can't help with that.")], stop_reason: "refusal" },
      meta,
      JSON_REQ,
    );
    expect(refused.choices[0]).toMatchObject({
      message: { content: "I can't help with that." },
      finish_reason: "content_filter",
    });
  });

  test("streamed: input_json_delta fragments become content deltas, no tool_calls, finish stop", () => {
    const t = anthropic.stream(meta, JSON_REQ);
    const chunks = [...fixtureEvents("stream-json-tool.sse").flatMap((e) => t.push(e)), ...t.end()];
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(JSON.parse(contentOf(chunks))).toEqual({
      description: "A lighthouse on a rocky shore at dusk.",
      estimated_year: 1990,
    });
    expect(toolDeltas(chunks)).toEqual([]);
    expect(chunks.filter((c) => c.choices[0]?.delta.content === "")).toHaveLength(1);
    expect(finishes(chunks)).toEqual(["stop"]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 1203, completion_tokens: 58, total_tokens: 1261 });
    // the same events without response_format are a tool call
    expect(finishes(translate(fixtureEvents("stream-json-tool.sse")))).toEqual(["tool_calls"]);
  });

  test("streamed: an input without fragments is {}; a second tool_use is left out", () => {
    const t = anthropic.stream(meta, { ...JSON_REQ, response_format: { type: "json_object" } });
    const d = (o: unknown): SseEvent => ({ data: JSON.stringify(o) });
    const start = (index: number) => ({
      type: "content_block_start",
      index,
      content_block: { type: "tool_use", id: `t${index}`, name: "json_object", input: {} },
    });
    const delta = (index: number, partial_json: string) => ({
      type: "content_block_delta",
      index,
      delta: { type: "input_json_delta", partial_json },
    });
    const chunks = [
      d({ type: "message_start", message: { usage: { input_tokens: 5, output_tokens: 1 } } }),
      d(start(0)),
      d(delta(0, "")),
      d({ type: "content_block_stop", index: 0 }),
      d(start(1)),
      d(delta(1, '{"x":1}')),
      d({ type: "content_block_stop", index: 1 }),
      d({ type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 9 } }),
      d({ type: "message_stop" }),
    ].flatMap((e) => t.push(e));
    expect(contentOf(chunks)).toBe("{}");
    expect(toolDeltas(chunks)).toEqual([]);
    expect(finishes(chunks)).toEqual(["stop"]);
  });
});

describe("anthropic parallel_tool_calls", () => {
  const tools = [{ type: "function" as const, function: { name: "now" } }];
  const choice = (tool_choice: OpenAIChatRequest["tool_choice"], parallel_tool_calls: boolean | null = false) =>
    body({ tools, tool_choice, parallel_tool_calls }).tool_choice;

  test("false sets disable_parallel_tool_use on auto, any and tool; auto when no tool_choice", () => {
    expect(choice(undefined)).toEqual({ type: "auto", disable_parallel_tool_use: true });
    expect(choice(null)).toEqual({ type: "auto", disable_parallel_tool_use: true });
    expect(choice("auto")).toEqual({ type: "auto", disable_parallel_tool_use: true });
    expect(choice("required")).toEqual({ type: "any", disable_parallel_tool_use: true });
    expect(choice({ type: "function", function: { name: "now" } })).toEqual({
      type: "tool",
      name: "now",
      disable_parallel_tool_use: true,
    });
    expect(choice("none")).toEqual({ type: "none" });
  });

  test("true or null leave tool_choice as it was; without tools nothing is sent", () => {
    expect(choice("auto", true)).toEqual({ type: "auto" });
    expect(choice(undefined, null)).toBeUndefined();
    expect(body({ parallel_tool_calls: false })).toEqual(body({}));
  });
});

describe("anthropic parameters it cannot honour", () => {
  const NOT_DEFAULT: Record<string, unknown> = {
    n: 2,
    frequency_penalty: 0.5,
    presence_penalty: -1,
    logprobs: true,
    top_logprobs: 3,
    logit_bias: { "50256": -100 },
    seed: 4,
    audio: { voice: "alloy", format: "mp3" },
    modalities: ["text", "audio"],
    prediction: { type: "content", content: "x" },
    web_search_options: {},
    reasoning_effort: "low",
    verbosity: "high",
    functions: [{ name: "f" }],
    function_call: { name: "f" },
  };

  test("every refused parameter has a case here", () => {
    expect(Object.keys(NOT_DEFAULT).sort()).toEqual([...UNSUPPORTED].sort());
    expect(Object.keys(REFUSED)).toEqual(UNSUPPORTED);
  });

  test.each(Object.entries(NOT_DEFAULT))("%s set is a 400 naming it", (param, value) => {
    const err = thrown({ [param]: value });
    expect(err).toMatchObject({
      code: 400,
      type: "unsupported_parameter",
      data: { param, openaiType: "invalid_request_error" },
    });
    expect(err.message).toMatch(new RegExp(`^'${param}' is not supported by Anthropic models \\(.+\\)\\.$`));
  });

  test("defaults, nulls and labels are not refused, and not sent", () => {
    const defaults = {
      n: 1,
      frequency_penalty: 0,
      presence_penalty: 0,
      logprobs: false,
      top_logprobs: 0,
      logit_bias: {},
      modalities: ["text"],
      verbosity: "medium",
      functions: [],
      function_call: "auto",
      seed: null,
      audio: null,
      reasoning_effort: null,
      // ignored: they only label the request
      metadata: { team: "a" },
      store: true,
      service_tier: "flex",
      prompt_cache_key: "k-1",
    };
    expect(body(defaults)).toEqual(body({}));
    expect(thrown({ function_call: "none", prediction: null, web_search_options: null })).toBeUndefined();
  });
});

describe("Messages API ingress: requests", () => {
  test("system, text and image blocks, sampling, stop_sequences and metadata", () => {
    const image = (source: object) => ({ type: "image", source });
    const req = ingress.parseMessagesRequest({
      model: "local-model",
      max_tokens: 100,
      system: [text("You are terse."), { ...text("Answer in French."), cache_control: { type: "ephemeral" } }],
      messages: [
        user([
          text("What?"),
          image({ type: "base64", media_type: "image/png", data: "iVBOR" }),
          image({ type: "url", url: "https://x.test/a.jpg" }),
        ]),
        { role: "assistant", content: [{ type: "thinking", thinking: "hmm", signature: "s" }, text("A cat.")] },
        user("Sure?"),
      ],
      ...{
        temperature: 0.5,
        top_p: 0.9,
        stop_sequences: ["END"],
        stream: true,
        metadata: { user_id: "u-7" },
      },
    });
    const img = (url: string) => ({ type: "image_url", image_url: { url } });
    expect(req).toEqual({
      model: "local-model",
      max_tokens: 100,
      messages: [
        { role: "system", content: "You are terse.\nAnswer in French." },
        user([text("What?"), img("data:image/png;base64,iVBOR"), img("https://x.test/a.jpg")]),
        { role: "assistant", content: "A cat." },
        user("Sure?"),
      ],
      ...{
        temperature: 0.5,
        top_p: 0.9,
        stop: ["END"],
        stream: true,
        stream_options: { include_usage: true },
        user: "u-7",
      },
    });
  });

  test("tool_use and tool_result round-trip through the provider's request", () => {
    const use = { type: "tool_use", id: "toolu_1", name: "get_weather", input: { location: "Paris" } };
    const req = ingress.parseMessagesRequest({
      model: "m",
      max_tokens: 10,
      system: "Use tools.",
      tools: [{ name: "get_weather", description: "Weather", input_schema: WEATHER }],
      tool_choice: { type: "any" },
      messages: [
        user("Weather in Paris?"),
        { role: "assistant", content: [use] },
        user([{ type: "tool_result", tool_use_id: "toolu_1", content: [text("18C")] }, text("And tomorrow?")]),
      ],
    });
    const fn = { name: "get_weather", arguments: '{"location":"Paris"}' };
    expect(req.messages.slice(2)).toEqual([
      { role: "assistant", content: null, tool_calls: [{ id: "toolu_1", type: "function", function: fn }] },
      { role: "tool", tool_call_id: "toolu_1", content: "18C" },
      user("And tomorrow?"),
    ]);
    expect(req.tools).toEqual([
      { type: "function", function: { name: "get_weather", description: "Weather", parameters: WEATHER } },
    ]);
    expect(req.tool_choice).toBe("required");
    // and back to Anthropic: the same conversation
    const back = anthropic.request(req, cfg).body as Json;
    expect(back).toMatchObject({ system: "Use tools.", tool_choice: { type: "any" } });
    expect(back.tools).toEqual([{ name: "get_weather", description: "Weather", input_schema: WEATHER }]);
    expect(back.messages.slice(1)).toEqual([
      { role: "assistant", content: [use] },
      user([{ type: "tool_result", tool_use_id: "toolu_1", content: "18C" }, text("And tomorrow?")]),
    ]);
    const base = { model: "m", max_tokens: 1, messages: [user("x")], tools: [{ name: "f", input_schema: {} }] };
    const choice = (tool_choice: object) => ingress.parseMessagesRequest({ ...base, tool_choice }).tool_choice;
    expect([choice({ type: "auto" }), choice({ type: "none" })]).toEqual(["auto", "none"]);
    expect(choice({ type: "tool", name: "f" })).toEqual({ type: "function", function: { name: "f" } });
    const parallel = ingress.parseMessagesRequest({
      ...base,
      tool_choice: { type: "any", disable_parallel_tool_use: true },
    });
    expect(parallel).toMatchObject({ tool_choice: "required", parallel_tool_calls: false });
  });

  test("a field the router cannot honour is a 400 naming it; labels and thinking switched off pass", () => {
    const base = { model: "m", max_tokens: 1, messages: [user("x")] };
    for (const [key, value] of Object.entries({
      top_k: 40,
      thinking: { type: "enabled", budget_tokens: 1024 },
      container: "c",
      mcp_servers: [],
    })) {
      let err: { code?: number; type?: string; data?: { param?: string } } = {};
      try {
        ingress.parseMessagesRequest({ ...base, [key]: value });
      } catch (e) {
        err = e as typeof err;
      }
      expect([err.code, err.type, err.data?.param]).toEqual([400, "unsupported_parameter", key]);
    }
    expect(() =>
      ingress.parseMessagesRequest({ ...base, service_tier: "auto", thinking: { type: "disabled" } }),
    ).not.toThrow();
  });

  test("a bad body is a 400 naming the param", () => {
    const cases: Array<[object, string, RegExp]> = [
      [{ max_tokens: undefined }, "max_tokens", /Missing required parameter/],
      [{ max_tokens: 0 }, "max_tokens", /Invalid/],
      [{ messages: [] }, "messages", /at least one/],
      [{ messages: [{ role: "system", content: "x" }] }, "messages[0].role", /Invalid/],
      [{ messages: [user(5)] }, "messages[0].content", /string or an array/],
      [{ messages: [user([{ type: "text" }])] }, "messages[0].content[0].text", /Missing/],
      [{ messages: [user([{ type: "video" }])] }, "messages[0].content[0].type", /Invalid/],
      [{ temperature: 1.5 }, "temperature", /Invalid/],
      [{ tools: [{ name: "web_search" }] }, "tools[0].input_schema", /Missing/],
    ];
    for (const [bad, param, message] of cases) {
      let err: Error | undefined;
      try {
        ingress.parseMessagesRequest({ model: "m", max_tokens: 5, messages: [user("x")], ...bad });
      } catch (e) {
        err = e as Error;
      }
      expect(err).toMatchObject({ code: 400, data: { param, openaiType: "invalid_request_error" } });
      expect(err?.message).toMatch(message);
    }
    expect(() => ingress.parseMessagesRequest([1])).toThrow(expect.objectContaining({ code: 400 }));
  });
});

function completion(message: OpenAIChatCompletion["choices"][0]["message"], finish: string): OpenAIChatCompletion {
  const choices = [{ index: 0, message, logprobs: null, finish_reason: finish as "stop" }];
  const usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 };
  return { id: "chatcmpl-xyz", object: "chat.completion", created: 1, model: "local", choices, usage };
}

const chunk = (delta: Json, finish: string | null = null, usage?: Json): OpenAIChunk => ({
  ...{ id: "chatcmpl-s1", object: "chat.completion.chunk", created: 1, model: "local" },
  choices: delta === null ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finish as null }],
  ...(usage ? { usage } : {}),
});
const USAGE = { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 };
const TEXT_CHUNKS = [
  chunk({ role: "assistant", content: "" }),
  chunk({ content: "Hel" }),
  chunk({ content: "lo" }),
  chunk({}, "stop"),
  chunk(null, null, USAGE),
];
const call = (index: number, id: string | undefined, name: string | undefined, args: string) =>
  chunk({ tool_calls: [{ index, id, function: { name, arguments: args } }] });
const CALL_CHUNKS = [
  chunk({ role: "assistant", content: "Let me look." }),
  call(0, "call_1", "get_weather", ""),
  call(0, undefined, undefined, '{"location":'),
  call(0, undefined, undefined, '"Paris"}'),
  call(1, "call_2", "now", "{}"),
  chunk({}, "tool_calls"),
  chunk(null, null, USAGE),
];

function write(chunks: OpenAIChunk[], model?: string) {
  const w = new ingress.AnthropicStreamWriter(model);
  return [...chunks.flatMap((c) => w.push(c)), ...w.end()];
}

describe("Messages API ingress: answers", () => {
  test("toAnthropicMessage: text, tool calls (no empty text block), stop reasons", () => {
    expect(ingress.toAnthropicMessage(completion({ role: "assistant", content: "Hello" }, "length"), "local")).toEqual({
      ...{ id: "msg_xyz", type: "message", role: "assistant", model: "local", content: [text("Hello")] },
      ...{ stop_reason: "max_tokens", stop_sequence: null, usage: { input_tokens: 7, output_tokens: 3 } },
    });
    const fc = { id: "call_9", type: "function" as const, function: { name: "f", arguments: '{"a":1}' } };
    const calls = ingress.toAnthropicMessage(
      completion({ role: "assistant", content: null, tool_calls: [fc] }, "tool_calls"),
      "m",
    );
    expect(calls).toMatchObject({
      content: [{ type: "tool_use", id: "call_9", name: "f", input: { a: 1 } }],
      stop_reason: "tool_use",
    });
    const both = ingress.toAnthropicMessage(
      completion({ role: "assistant", content: "Hi", tool_calls: [fc] }, "stop"),
      "m",
    );
    expect((both as Json).content.map((b: Json) => b.type)).toEqual(["text", "tool_use"]);
    const filtered = ingress.toAnthropicMessage(completion({ role: "assistant", content: "" }, "content_filter"), "m");
    expect(filtered).toMatchObject({ content: [text("")], stop_reason: "refusal" });
  });

  test("the stream writer's events for a text answer, message_delta held for the usage", () => {
    const w = new ingress.AnthropicStreamWriter("my-model");
    const first = TEXT_CHUNKS.slice(0, 4).flatMap((c) => w.push(c));
    const names = [
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
    ];
    expect(first.map((e) => e.event)).toEqual(names);
    expect(first[0].data).toMatchObject({
      type: "message_start",
      message: { id: "msg_s1", model: "my-model", content: [] },
    });
    expect(first[2].data).toEqual({
      type: "content_block_delta",
      index: 0,
      delta: { type: "text_delta", text: "Hel" },
    });
    const rest = [...w.push(TEXT_CHUNKS[4]), ...w.end()];
    const delta = { stop_reason: "end_turn", stop_sequence: null };
    expect(rest).toEqual([
      { event: "message_delta", data: { type: "message_delta", delta, usage: { output_tokens: 2, input_tokens: 4 } } },
      { event: "message_stop", data: { type: "message_stop" } },
    ]);
    for (const e of [...first, ...rest]) expect((e.data as Json).type).toBe(e.event);
  });

  test("the stream writer's events for tool calls", () => {
    const events = write(CALL_CHUNKS);
    const blocks = (i: number, deltas: number) => [`start${i}`, ...Array<string>(deltas).fill(`delta${i}`), `stop${i}`];
    expect(events.map((e) => `${e.event.replace("content_block_", "")}${(e.data as Json).index ?? ""}`)).toEqual([
      "message_start",
      ...[...blocks(0, 1), ...blocks(1, 2), ...blocks(2, 1)],
      "message_delta",
      "message_stop",
    ]);
    const block = { type: "tool_use", id: "call_1", name: "get_weather", input: {} };
    expect(events[4].data).toEqual({ type: "content_block_start", index: 1, content_block: block });
    expect(events[5].data).toMatchObject({ delta: { type: "input_json_delta", partial_json: '{"location":' } });
    expect(events.at(-2)!.data).toMatchObject({ delta: { stop_reason: "tool_use" } });
    expect((events[0].data as Json).message.model).toBe("local");
  });

  test("without a usage chunk, end() closes the message; an empty stream is still a message", () => {
    const events = write(TEXT_CHUNKS.slice(0, 3));
    expect(events.map((e) => e.event).slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect(events.at(-2)!.data).toMatchObject({ delta: { stop_reason: "end_turn" }, usage: { output_tokens: 0 } });
    expect(write([], "m").map((e) => e.event)).toEqual(["message_start", "message_delta", "message_stop"]);
  });

  test("the official SDK reads the writer's stream", async () => {
    const sdk = (chunks: OpenAIChunk[]) => {
      const sse = write(chunks).map(ingress.formatSse).join("");
      const fetch = async () => new Response(sse, { headers: { "content-type": "text/event-stream" } });
      const client = new Anthropic({ apiKey: "k", baseURL: "http://router.invalid", fetch, maxRetries: 0 });
      return client.messages.stream({ model: "local", max_tokens: 5, messages: [user("x")] }).finalMessage();
    };
    const plain = await sdk(TEXT_CHUNKS);
    expect(plain).toMatchObject({
      content: [text("Hello")],
      stop_reason: "end_turn",
      usage: { input_tokens: 4, output_tokens: 2 },
    });
    const tools = await sdk(CALL_CHUNKS);
    const summary = tools.content.map((b) => (b.type === "tool_use" ? [b.name, b.input] : [b.type]));
    expect(summary).toEqual([["text"], ["get_weather", { location: "Paris" }], ["now", {}]]);
    expect(tools.stop_reason).toBe("tool_use");
  });

  test("anthropicError maps statuses to Anthropic's error types", () => {
    const types = { 400: "invalid_request_error", 401: "authentication_error", 403: "permission_error" };
    const more = { 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error" };
    const rest = { 503: "overloaded_error", 529: "overloaded_error", 422: "invalid_request_error", 502: "api_error" };
    for (const [status, type] of Object.entries({ ...types, ...more, ...rest })) {
      expect(ingress.anthropicError(Number(status), "no")).toEqual({ type: "error", error: { type, message: "no" } });
    }
  });
});

describe("the Anthropic stand-in", () => {
  let standIn: Awaited<ReturnType<typeof startAnthropicStandIn>>;
  beforeAll(async () => {
    standIn = await startAnthropicStandIn();
  });
  afterAll(() => standIn.close());

  const post = (req: Partial<OpenAIChatRequest>, key = ANTHROPIC_TEST_KEY, signal?: AbortSignal) => {
    const up = anthropic.request(
      { model: "claude-sonnet-4-5", messages: [user("Hello")], ...req },
      { apiKey: key, baseUrl: standIn.url },
    );
    return fetch(up.url, { method: "POST", headers: up.headers, body: JSON.stringify(up.body), signal });
  };

  test("answers the provider's requests with the fixtures, and checks the key", async () => {
    expect((await post({}, "wrong")).status).toBe(401);
    const plain = anthropic.response(await (await post({})).json(), meta);
    expect(plain.choices[0].message.content).toBe("Hi! My name is Claude.");
    const tools = [{ type: "function" as const, function: { name: "get_weather", parameters: WEATHER } }];
    const chunks = translate(sseEvents(await (await post({ stream: true, tools })).text()));
    expect(finishes(chunks)).toEqual(["tool_calls"]);
    expect(standIn.requests.at(-1)).toMatchObject({ method: "POST", path: "/v1/messages", body: { stream: true } });
    expect(standIn.requests.at(-1)!.headers["anthropic-version"]).toBe("2023-06-01");
  });

  test("queued answers first; SLOW streams until the client goes", async () => {
    standIn.queue.push({
      status: 429,
      body: anthropicFixture("error-429-rate-limit.json"),
      headers: { "retry-after": "1" },
    });
    const limited = await post({});
    expect([limited.status, limited.headers.get("retry-after")]).toEqual([429, "1"]);
    const ac = new AbortController();
    const before = standIn.closedEarly;
    const res = await post({ stream: true, messages: [user("SLOW please")] }, undefined, ac.signal);
    await res.body!.getReader().read();
    ac.abort();
    await waitFor(() => standIn.closedEarly !== before, { what: "the upstream stream closed" });
    expect(standIn.closedEarly).toBe(before + 1);
  });
});
