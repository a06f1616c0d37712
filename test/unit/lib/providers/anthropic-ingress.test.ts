import Anthropic from "@anthropic-ai/sdk";
import { anthropic } from "../../../../lib/providers/anthropic";
import * as ingress from "../../../../lib/providers/anthropic-ingress";
import type { OpenAIChatCompletion, OpenAIChunk } from "../../../../lib/providers/types";
import { anthropicSetup, text, user, WEATHER, type Json } from "./helpers";

// The Messages API ingress (lib/providers/anthropic-ingress.ts): Anthropic-shaped requests in, OpenAI answers and
// streams written back as Anthropic messages and events
const { cfg } = anthropicSetup;

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
