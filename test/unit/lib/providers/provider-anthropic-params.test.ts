import { anthropic } from "../../../../lib/providers/anthropic";
import { REFUSED, UNSUPPORTED } from "../../../../lib/providers/anthropic-params";
import type { OpenAIChatRequest, SseEvent } from "../../../../lib/providers/types";
import { anthropicFixture } from "../../../helpers/standins/anthropic";
import { anthropicSetup, contentOf, finishes, text, toolDeltas, user, type Json } from "./helpers";

// What Anthropic does with each OpenAI parameter that is not a message, a tool or plain sampling
// (lib/providers/anthropic-params.ts): response_format as a forced tool, parallel_tool_calls, refusals
const { meta, body, thrown, fixtureEvents, translate } = anthropicSetup;

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
