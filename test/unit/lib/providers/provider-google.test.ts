import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createParser } from "eventsource-parser";
import { UNSUPPORTED as ANTHROPIC_UNSUPPORTED } from "../../../../lib/providers/anthropic";
import { google, REFUSED, UNSUPPORTED } from "../../../../lib/providers/google";
import { openai } from "../../../../lib/providers/openai";
import { cloudParamSupport, refusalReason } from "../../../../lib/providers/params";
import type { OpenAIChatRequest, OpenAIChunk, OpenAIMessage, SseEvent } from "../../../../lib/providers/types";
import { OPENAI_CHAT_PARAMS, ProviderError } from "../../../../lib/providers/types";
import { waitFor } from "../../../helpers/wait";
import { GOOGLE_TEST_KEY, googleFixture, startGoogleStandIn, type StandIn } from "../../../helpers/standins/google";

const cfg = { apiKey: "secret-key", baseUrl: "https://generativelanguage.googleapis.com/v1beta" };
const meta = { id: "chatcmpl-abc", model: "google:gemini-2.5-flash", created: 1_700_000_000 };
const STORY =
  "Once upon a time, in a quiet village tucked between misty hills, lived a girl named Elara" +
  " who owned a backpack that could talk. The end.";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function body(req: Partial<OpenAIChatRequest>): Json {
  return google.request({ model: "gemini-2.5-flash", messages: [{ role: "user", content: "hi" }], ...req }, cfg).body;
}

function sseEvents(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = createParser({ onEvent: (e) => events.push({ event: e.event, data: e.data }) });
  parser.feed(text);
  return events;
}

function fixtureEvents(name: string): SseEvent[] {
  return sseEvents(readFileSync(join(__dirname, "../../../fixtures/google", name), "utf8"));
}

function translate(events: SseEvent[]): OpenAIChunk[] {
  const t = google.stream(meta);
  return [...events.flatMap((e) => t.push(e)), ...t.end()];
}

const contentOf = (chunks: OpenAIChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
const finishes = (chunks: OpenAIChunk[]) =>
  chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean);
const data = (o: unknown): SseEvent => ({ data: JSON.stringify(o) });

describe("google request", () => {
  test("posts generateContent with the key in a header, never in the URL", () => {
    const up = google.request(
      { model: "gemini-2.5-flash", messages: [{ role: "user", content: "hi" }] },
      { ...cfg, baseUrl: cfg.baseUrl + "/" },
    );
    expect(up.url).toBe("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
    expect(up.url).not.toContain("secret-key");
    expect(up.headers).toEqual({ "x-goog-api-key": "secret-key", "content-type": "application/json" });
    expect(JSON.stringify(up.body)).not.toContain("secret-key");
    expect(up.body).toEqual({ contents: [{ role: "user", parts: [{ text: "hi" }] }] });
  });

  test("a stream goes to streamGenerateContent with alt=sse", () => {
    const up = google.request({ model: "models/gemini-2.0-flash", messages: [], stream: true }, cfg);
    expect(up.url).toBe(`${cfg.baseUrl}/models/gemini-2.0-flash:streamGenerateContent?alt=sse`);
    expect(up.url).not.toContain("key=");
  });

  test("system and developer messages become the system instruction; assistant becomes model", () => {
    const b = body({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello" },
        { role: "assistant", content: "Hi there" },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "How are you?" },
        { role: "user", content: [{ type: "text", text: "And today?" }] },
      ],
    });
    expect(b.systemInstruction).toEqual({ parts: [{ text: "Be brief." }, { text: "Answer in French." }] });
    expect(b.contents).toEqual([
      { role: "user", parts: [{ text: "Hello" }] },
      { role: "model", parts: [{ text: "Hi there" }] },
      { role: "user", parts: [{ text: "How are you?" }, { text: "And today?" }] },
    ]);
  });

  test("sampling parameters go to generationConfig", () => {
    expect(
      body({ max_tokens: 50, max_completion_tokens: 100, temperature: 0, top_p: 0.9, stop: "END", seed: 7 }),
    ).toMatchObject({
      generationConfig: { maxOutputTokens: 100, temperature: 0, topP: 0.9, stopSequences: ["END"], seed: 7 },
    });
    expect(body({ max_tokens: 50, stop: ["a", "b"] }).generationConfig).toEqual({
      maxOutputTokens: 50,
      stopSequences: ["a", "b"],
    });
    expect(body({ max_tokens: null, temperature: null, stop: [] })).not.toHaveProperty("generationConfig");
  });

  test("images: data URLs go inline, http URLs as fileData", () => {
    const b = body({
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.webp?size=large#top" } },
            { type: "image_url", image_url: { url: "https://example.com/images/photo", detail: "high" } },
            { type: "image_url", image_url: { url: "data:image/svg+xml,%3Csvg%2F%3E" } },
          ],
        },
      ],
    });
    expect(b.contents[0].parts).toEqual([
      { text: "What is in these?" },
      { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } },
      { fileData: { mimeType: "image/webp", fileUri: "https://example.com/cat.webp?size=large#top" } },
      { fileData: { mimeType: "image/jpeg", fileUri: "https://example.com/images/photo" } },
      { inlineData: { mimeType: "image/svg+xml", data: Buffer.from("<svg/>").toString("base64") } },
    ]);
  });

  const tools = [
    {
      type: "function" as const,
      function: {
        name: "get_weather",
        description: "Weather in a city",
        parameters: {
          $schema: "http://json-schema.org/draft-07/schema#",
          type: "object",
          properties: {
            city: { type: "string" },
            additionalProperties: {
              type: "object",
              additionalProperties: false,
              properties: { x: { type: "string" } },
            },
          },
          required: ["city"],
          additionalProperties: false,
        },
      },
    },
    { type: "function" as const, function: { name: "now", parameters: { type: "object", properties: {} } } },
  ];

  test("tools become function declarations", () => {
    expect(body({ tools }).tools).toEqual([
      {
        functionDeclarations: [
          {
            name: "get_weather",
            description: "Weather in a city",
            parameters: {
              type: "object",
              properties: {
                city: { type: "string" },
                additionalProperties: { type: "object", properties: { x: { type: "string" } } },
              },
              required: ["city"],
            },
          },
          { name: "now" },
        ],
      },
    ]);
    expect(body({ tools })).not.toHaveProperty("toolConfig");
  });

  test.each([
    ["auto", { mode: "AUTO" }],
    ["none", { mode: "NONE" }],
    ["required", { mode: "ANY" }],
    [
      { type: "function", function: { name: "now" } },
      { mode: "ANY", allowedFunctionNames: ["now"] },
    ],
  ] as const)("tool_choice %j", (choice, config) => {
    expect(body({ tools, tool_choice: choice }).toolConfig).toEqual({ functionCallingConfig: config });
  });

  test("tool calls and tool results carry the function's name, results merged into one turn", () => {
    const messages: OpenAIMessage[] = [
      { role: "user", content: "Weather in Paris and London?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
          { id: "call_2", type: "function", function: { name: "get_time", arguments: "" } },
        ],
      },
      { role: "tool", tool_call_id: "call_2", content: "12:00" },
      { role: "tool", tool_call_id: "call_1", content: '{"temp":21,"unit":"C"}' },
      { role: "assistant", content: "Sunny, noon." },
      { role: "user", content: "And now?" },
      {
        role: "assistant",
        content: "Checking.",
        tool_calls: [{ id: "call_1", type: "function", function: { name: "now", arguments: "{}" } }],
      },
      { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: "[1, 2]" }] },
    ];
    expect(body({ messages }).contents).toEqual([
      { role: "user", parts: [{ text: "Weather in Paris and London?" }] },
      {
        role: "model",
        parts: [
          { functionCall: { name: "get_weather", args: { city: "Paris" } } },
          { functionCall: { name: "get_time", args: {} } },
        ],
      },
      {
        role: "user",
        parts: [
          { functionResponse: { name: "get_time", response: { content: "12:00" } } },
          { functionResponse: { name: "get_weather", response: { temp: 21, unit: "C" } } },
        ],
      },
      { role: "model", parts: [{ text: "Sunny, noon." }] },
      { role: "user", parts: [{ text: "And now?" }] },
      { role: "model", parts: [{ text: "Checking." }, { functionCall: { name: "now", args: {} } }] },
      { role: "user", parts: [{ functionResponse: { name: "now", response: { content: "[1, 2]" } } }] },
    ]);
  });
});

describe("google response", () => {
  test("a text answer", () => {
    expect(google.response(googleFixture("generate-content-text.json"), meta)).toEqual({
      id: "chatcmpl-abc",
      object: "chat.completion",
      created: 1_700_000_000,
      model: "google:gemini-2.5-flash",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content:
              "AI learns patterns from large amounts of data, then uses those patterns to make predictions or generate new content.",
          },
          logprobs: null,
          finish_reason: "stop",
        },
      ],
      // thinking tokens count as output
      usage: { prompt_tokens: 8, completion_tokens: 555, total_tokens: 563 },
    });
  });

  test("a function call", () => {
    const out = google.response(googleFixture("generate-content-function-call.json"), meta);
    const choice = out.choices[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0];
    expect(call).toMatchObject({ type: "function", function: { name: "schedule_meeting" } });
    expect(call.id).toMatch(/^call_\w+$/);
    expect(JSON.parse(call.function.arguments)).toEqual({
      attendees: ["Bob", "Alice"],
      date: "2025-03-27",
      time: "10:00",
      topic: "Q3 planning",
    });
    expect(out.usage).toEqual({ prompt_tokens: 117, completion_tokens: 109, total_tokens: 226 });
  });

  test("call ids are unique unless Google gives one; thought summaries are left out", () => {
    const parts = [
      { text: "Thinking about it", thought: true },
      { text: "Let me check." },
      { functionCall: { name: "a", args: {} } },
      { functionCall: { name: "b" } },
      { functionCall: { id: "fc-9", name: "c", args: { x: 1 } } },
    ];
    const out = google.response({ candidates: [{ content: { parts, role: "model" }, finishReason: "STOP" }] }, meta);
    const calls = out.choices[0].message.tool_calls!;
    expect(out.choices[0].message.content).toBe("Let me check.");
    expect(new Set(calls.map((c) => c.id)).size).toBe(3);
    expect(calls.map((c) => [c.function.name, c.function.arguments])).toEqual([
      ["a", "{}"],
      ["b", "{}"],
      ["c", '{"x":1}'],
    ]);
    expect(calls[2].id).toBe("fc-9");
  });

  test.each([
    ["STOP", "stop"],
    ["MAX_TOKENS", "length"],
    ["SAFETY", "content_filter"],
    ["RECITATION", "content_filter"],
    ["BLOCKLIST", "content_filter"],
    ["PROHIBITED_CONTENT", "content_filter"],
    ["SPII", "content_filter"],
    ["OTHER", "stop"],
    ["MALFORMED_FUNCTION_CALL", "stop"],
    [undefined, "stop"],
  ])("finishReason %s → %s", (reason, expected) => {
    const out = google.response({ candidates: [{ content: { parts: [{ text: "x" }] }, finishReason: reason }] }, meta);
    expect(out.choices[0].finish_reason).toBe(expected);
  });

  test("missing usage counts 0", () => {
    const out = google.response({ candidates: [{ content: { parts: [{ text: "x" }] }, finishReason: "STOP" }] }, meta);
    expect(out.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  });

  test("a prompt blocked by Google answers an empty content_filter completion", () => {
    const out = google.response(googleFixture("generate-content-blocked.json"), meta);
    expect(out.choices[0]).toEqual({
      index: 0,
      message: { role: "assistant", content: "" },
      logprobs: null,
      finish_reason: "content_filter",
    });
    expect(out.usage).toEqual({ prompt_tokens: 12, completion_tokens: 0, total_tokens: 12 });
  });
});

describe("google stream", () => {
  test("text events become content chunks, a finish chunk and a usage chunk", () => {
    const events = fixtureEvents("stream-text.sse");
    expect(events).toHaveLength(4);
    const chunks = translate(events);
    for (const c of chunks) {
      expect(c).toMatchObject({
        id: meta.id,
        object: "chat.completion.chunk",
        model: meta.model,
        created: meta.created,
      });
    }
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "Once upon a time, in a quiet village" });
    expect(chunks.filter((c) => c.choices[0]?.delta.role)).toHaveLength(1);
    expect(contentOf(chunks)).toBe(STORY);
    expect(finishes(chunks)).toEqual(["stop"]);
    expect(chunks.at(-2)!.choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: "stop" });
    expect(chunks.at(-1)).toEqual({
      id: meta.id,
      object: "chat.completion.chunk",
      created: meta.created,
      model: meta.model,
      choices: [],
      usage: { prompt_tokens: 11, completion_tokens: 345, total_tokens: 356 },
    });
  });

  test("function calls become tool_calls deltas and finish with tool_calls", () => {
    const chunks = translate(fixtureEvents("stream-function-call.sse"));
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls.map((c) => [c.index, c.type, c.function?.name, JSON.parse(c.function?.arguments ?? "")])).toEqual([
      [0, "function", "power_disco_ball", { power: true }],
      [1, "function", "start_music", { energetic: true, loud: true }],
      [2, "function", "dim_lights", { brightness: 0.3 }],
    ]);
    for (const c of calls) expect(c.id).toMatch(/^call_/);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(finishes(chunks)).toEqual(["tool_calls"]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 196, completion_tokens: 105, total_tokens: 301 });
  });

  test("MAX_TOKENS finishes with length; blank events are ignored", () => {
    const chunks = translate([
      { data: "" },
      data({ candidates: [{ content: { parts: [{ text: "Hel" }] } }] }),
      data({ candidates: [{ content: { parts: [{ text: "lo" }] }, finishReason: "MAX_TOKENS" }] }),
    ]);
    expect(contentOf(chunks)).toBe("Hello");
    expect(finishes(chunks)).toEqual(["length"]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  });

  test("a blocked prompt finishes with content_filter", () => {
    const chunks = translate([data(googleFixture("generate-content-blocked.json"))]);
    expect(chunks[0].choices[0]).toMatchObject({ delta: { role: "assistant" }, finish_reason: "content_filter" });
    expect(finishes(chunks)).toEqual(["content_filter"]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 12, completion_tokens: 0, total_tokens: 12 });
  });

  test("a stream that ends without a finishReason still finishes", () => {
    const chunks = translate([data({ candidates: [{ content: { parts: [{ text: "cut" }] } }] })]);
    expect(finishes(chunks)).toEqual(["stop"]);
    expect(chunks.at(-1)!.choices).toEqual([]);
  });

  test("an error event throws a ProviderError with Google's code", () => {
    const t = google.stream(meta);
    t.push(fixtureEvents("stream-text.sse")[0]);
    const err = (() => {
      try {
        t.push(data({ error: { code: 503, message: "The model is overloaded.", status: "UNAVAILABLE" } }));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ status: 503, message: "The model is overloaded.", provider: "google" });
    expect(() => google.stream(meta).push(data({ error: { message: "boom" } }))).toThrow(
      expect.objectContaining({ status: 502, message: "boom", provider: "google" }),
    );
    expect(() => google.stream(meta).push({ data: "not json" })).toThrow(ProviderError);
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

describe("google response_format", () => {
  const SCHEMA = {
    type: "object",
    properties: { name: { type: "string" }, ingredients: { type: "array", items: { type: "string" } } },
    required: ["name"],
    additionalProperties: false,
  };

  test("json_object asks for JSON", () => {
    expect(body({ response_format: { type: "json_object" } }).generationConfig).toEqual({
      responseMimeType: "application/json",
    });
  });

  test("json_schema asks for JSON with the schema as responseJsonSchema, untouched", () => {
    const rf = { type: "json_schema" as const, json_schema: { name: "recipe", schema: SCHEMA, strict: true } };
    expect(body({ response_format: rf, temperature: 0 }).generationConfig).toEqual({
      temperature: 0,
      responseMimeType: "application/json",
      responseJsonSchema: SCHEMA,
    });
    // the format's description goes into the schema, unless the schema has its own
    const described = { ...rf, json_schema: { ...rf.json_schema, description: "A recipe" } };
    expect(body({ response_format: described }).generationConfig.responseJsonSchema).toEqual({
      ...SCHEMA,
      description: "A recipe",
    });
    const own = { ...described, json_schema: { ...described.json_schema, schema: { ...SCHEMA, description: "Mine" } } };
    expect(body({ response_format: own }).generationConfig.responseJsonSchema.description).toBe("Mine");
    // no schema: JSON only
    expect(body({ response_format: { type: "json_schema", json_schema: { name: "any" } } }).generationConfig).toEqual({
      responseMimeType: "application/json",
    });
  });

  test("text or null asks for nothing", () => {
    expect(body({ response_format: { type: "text" } })).toEqual(body({}));
    expect(body({ response_format: null })).toEqual(body({}));
  });
});

describe("google sampling parameters Gemini has too", () => {
  test("n → candidateCount, penalties, logprobs → responseLogprobs and logprobs", () => {
    const b = body({ n: 3, presence_penalty: 0.5, frequency_penalty: -0.25, logprobs: true, top_logprobs: 5 });
    expect(b.generationConfig).toEqual({
      candidateCount: 3,
      presencePenalty: 0.5,
      frequencyPenalty: -0.25,
      responseLogprobs: true,
      logprobs: 5,
    });
    expect(body({ logprobs: true }).generationConfig).toEqual({ responseLogprobs: true });
  });

  test("their defaults are not sent", () => {
    const defaults = { n: 1, presence_penalty: 0, frequency_penalty: 0, logprobs: false, top_logprobs: 0 };
    expect(body(defaults)).toEqual(body({}));
    expect(body({ n: null, presence_penalty: null, logprobs: null, top_logprobs: null })).toEqual(body({}));
  });

  test("top_logprobs without logprobs is a 400, as at OpenAI", () => {
    expect(thrown({ top_logprobs: 2 })).toMatchObject({ code: 400, data: { param: "top_logprobs" } });
    expect(thrown({ top_logprobs: 2, logprobs: false })).toMatchObject({ code: 400 });
  });

  test("logprobsResult becomes the choice's logprobs", () => {
    const out = google.response(googleFixture("generate-content-logprobs.json"), meta);
    const bytes = (t: string) => [...Buffer.from(t, "utf8")];
    expect(out.choices[0].message.content).toBe("Paris.");
    expect(out.choices[0].logprobs).toEqual({
      content: [
        {
          token: "Paris",
          logprob: -0.0009,
          bytes: bytes("Paris"),
          top_logprobs: [
            { token: "Paris", logprob: -0.0009, bytes: bytes("Paris") },
            { token: "The", logprob: -7.25, bytes: bytes("The") },
          ],
        },
        {
          token: ".",
          logprob: -0.0237,
          bytes: bytes("."),
          top_logprobs: [
            { token: ".", logprob: -0.0237, bytes: bytes(".") },
            { token: "\n", logprob: -3.76, bytes: [10] },
          ],
        },
      ],
      refusal: null,
    });
    // streamed: on the chunk that carries the text
    const chunks = translate([data(googleFixture("generate-content-logprobs.json"))]);
    expect(chunks[0].choices[0].logprobs).toEqual(out.choices[0].logprobs);
    expect(chunks[1].choices[0].logprobs).toBeNull();
  });

  test("several candidates become several choices, whole and streamed", () => {
    const out = google.response(googleFixture("generate-content-two-candidates.json"), meta);
    expect(out.choices.map((c) => [c.index, c.message.content, c.finish_reason])).toEqual([
      [0, "Blue.", "stop"],
      [1, "Azure, like a clear summer sky", "length"],
    ]);
    expect(out.usage).toEqual({ prompt_tokens: 7, completion_tokens: 10, total_tokens: 17 });
    const chunks = translate([
      data({
        candidates: [{ content: { parts: [{ text: "Bl" }] } }, { content: { parts: [{ text: "Az" }] }, index: 1 }],
      }),
      data({ candidates: [{ content: { parts: [{ text: "ue." }] }, finishReason: "STOP", index: 0 }] }),
      data({ candidates: [{ content: { parts: [{ text: "ure" }] }, index: 1 }] }),
    ]);
    const of = (i: number) => chunks.filter((c) => c.choices[0]?.index === i);
    expect(of(0).map((c) => c.choices[0].delta)).toEqual([
      { role: "assistant", content: "Bl" },
      { content: "ue." },
      {},
    ]);
    expect(of(1).map((c) => c.choices[0].delta)).toEqual([
      { role: "assistant", content: "Az" },
      { content: "ure" },
      {},
    ]);
    expect(
      of(0)
        .map((c) => c.choices[0].finish_reason)
        .filter(Boolean),
    ).toEqual(["stop"]);
    expect(
      of(1)
        .map((c) => c.choices[0].finish_reason)
        .filter(Boolean),
    ).toEqual(["stop"]);
    expect(chunks.at(-1)!.choices).toEqual([]);
  });
});

describe("google parallel_tool_calls: false", () => {
  const req = (parallel_tool_calls: boolean | null) => ({
    model: "gemini-2.5-flash",
    messages: [{ role: "user" as const, content: "Party!" }],
    parallel_tool_calls,
  });

  test("is not sent: Gemini has no such switch", () => {
    expect(body({ parallel_tool_calls: false })).toEqual(body({}));
  });

  test("keeps only the first function call of an answer", () => {
    const events = fixtureEvents("stream-function-call.sse");
    const answer = JSON.parse(events[0].data) as Json;
    const one = google.response(answer, meta, req(false)).choices[0];
    expect(one.finish_reason).toBe("tool_calls");
    expect(one.message.tool_calls!.map((c) => c.function.name)).toEqual(["power_disco_ball"]);
    const all = google.response(answer, meta, req(true)).choices[0];
    expect(all.message.tool_calls!.map((c) => c.function.name)).toEqual([
      "power_disco_ball",
      "start_music",
      "dim_lights",
    ]);
    expect(google.response(answer, meta, req(null)).choices[0].message.tool_calls).toHaveLength(3);
  });

  test("streamed: only the call with index 0, even when later events bring more", () => {
    const t = google.stream(meta, req(false));
    const call = (name: string) => ({ functionCall: { name, args: {} } });
    const chunks = [...fixtureEvents("stream-function-call.sse").flatMap((e) => t.push(e)), ...t.end()];
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls.map((c) => [c.index, c.function?.name])).toEqual([[0, "power_disco_ball"]]);
    expect(finishes(chunks)).toEqual(["tool_calls"]);
    const t2 = google.stream(meta, req(false));
    const later = [
      data({ candidates: [{ content: { parts: [{ text: "Sure. " }] } }] }),
      data({ candidates: [{ content: { parts: [call("a")] } }] }),
      data({ candidates: [{ content: { parts: [call("b")] }, finishReason: "STOP" }] }),
    ].flatMap((e) => t2.push(e));
    expect(later.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []).map((c) => c.function?.name)).toEqual(["a"]);
    expect(contentOf(later)).toBe("Sure. ");
  });
});

describe("google parameters it cannot honour", () => {
  const NOT_DEFAULT: Record<string, unknown> = {
    logit_bias: { "50256": -100 },
    audio: { voice: "alloy", format: "mp3" },
    modalities: ["text", "audio"],
    prediction: { type: "content", content: "x" },
    web_search_options: { search_context_size: "low" },
    reasoning_effort: "high",
    verbosity: "low",
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
    expect(err.message).toMatch(new RegExp(`^'${param}' is not supported by Google models \\(.+\\)\\.$`));
  });

  test("defaults, nulls and labels are not refused, and not sent", () => {
    const defaults = {
      logit_bias: {},
      modalities: ["text"],
      verbosity: "medium",
      functions: [],
      function_call: "none",
      audio: null,
      prediction: null,
      reasoning_effort: null,
      // ignored: they only label the request
      user: "u-1",
      metadata: { team: "a" },
      store: false,
      service_tier: "auto",
      prompt_cache_key: "k-1",
      safety_identifier: "hash-1",
    };
    expect(body(defaults)).toEqual(body({}));
  });

  test("a tool_choice of null is no tool_choice", () => {
    const tools = [{ type: "function" as const, function: { name: "now" } }];
    expect(body({ tools, tool_choice: null })).not.toHaveProperty("toolConfig");
  });
});

describe("cloudParamSupport", () => {
  test("covers every OpenAI chat parameter for each provider", () => {
    for (const provider of ["openai", "google", "anthropic"] as const) {
      expect(Object.keys(cloudParamSupport(provider)).sort()).toEqual([...OPENAI_CHAT_PARAMS].sort());
    }
    expect(new Set(Object.values(cloudParamSupport("openai")))).toEqual(new Set(["translated"]));
  });

  test("refused is exactly each provider's REFUSED table", () => {
    const refused = (p: "google" | "anthropic") =>
      Object.entries(cloudParamSupport(p))
        .filter(([, s]) => s === "refused")
        .map(([k]) => k)
        .sort();
    expect(refused("google")).toEqual([...UNSUPPORTED].sort());
    expect(refused("anthropic")).toEqual([...ANTHROPIC_UNSUPPORTED].sort());
    expect(refusalReason("anthropic", "seed")).toMatch(/seed/);
    expect(refusalReason("google", "seed")).toBeUndefined();
  });

  test("the table, as docs show it", () => {
    const g = cloudParamSupport("google");
    const a = cloudParamSupport("anthropic");
    expect([g.response_format, g.n, g.logprobs, g.seed, g.parallel_tool_calls, g.user]).toEqual([
      "translated",
      "translated",
      "translated",
      "translated",
      "translated",
      "ignored",
    ]);
    expect([a.response_format, a.n, a.logprobs, a.seed, a.parallel_tool_calls, a.user, a.metadata]).toEqual([
      "translated",
      "refused",
      "refused",
      "refused",
      "translated",
      "translated",
      "ignored",
    ]);
  });
});

describe("openai passes the body through", () => {
  test("response_format, parallel_tool_calls and every other parameter go as sent", () => {
    const req = {
      model: "gpt-4o",
      messages: [{ role: "user" as const, content: "hi" }],
      response_format: {
        type: "json_schema" as const,
        json_schema: { name: "x", schema: { type: "object" }, strict: true },
      },
      parallel_tool_calls: false,
      logprobs: true,
      top_logprobs: 2,
      n: 2,
      seed: 1,
      logit_bias: { "1": 5 },
      reasoning_effort: "low",
      verbosity: "low",
      modalities: ["text"],
      store: true,
    };
    expect(openai.request(req, { apiKey: "k", baseUrl: "https://api.openai.com" }).body).toEqual(req);
    const streamed = openai.request({ ...req, stream: true }, { apiKey: "k", baseUrl: "https://api.openai.com" }).body;
    expect(streamed).toEqual({ ...req, stream: true, stream_options: { include_usage: true } });
  });
});

describe("google errorMessage", () => {
  test("Google's error JSON gives its message", () => {
    expect(google.errorMessage(400, googleFixture("error-invalid-argument-no-contents.json"))).toBe(
      "* GenerateContentRequest.contents: contents is not specified",
    );
    expect(google.errorMessage(400, googleFixture("error-400-api-key-invalid.json"))).toBe(
      "API key not valid. Please pass a valid API key.",
    );
    expect(google.errorMessage(429, googleFixture("error-429-resource-exhausted.json"))).toMatch(
      /^You exceeded your current quota.*Please retry in 21\.4s\.$/s,
    );
    expect(google.errorMessage(500, [{ error: { code: 500, message: "Internal error encountered." } }])).toBe(
      "Internal error encountered.",
    );
  });

  test("text bodies are trimmed and capped; anything else names the status", () => {
    expect(google.errorMessage(502, "  Bad gateway \n")).toBe("Bad gateway");
    expect(google.errorMessage(502, "x".repeat(2000))).toHaveLength(500);
    expect(google.errorMessage(404, "<!DOCTYPE html><html><title>Error 404 (Not Found)!!1</title><p>x</p>")).toBe(
      "Error 404 (Not Found)!!1",
    );
    expect(google.errorMessage(503, "")).toBe("Google answered 503.");
    expect(google.errorMessage(500, null)).toBe("Google answered 500.");
    expect(google.errorMessage(500, { error: {} })).toBe("Google answered 500.");
  });
});

describe("google stand-in", () => {
  let s: StandIn;
  beforeAll(async () => {
    s = await startGoogleStandIn();
  });
  afterAll(() => s.close());

  const post = (req: Partial<OpenAIChatRequest>, key = GOOGLE_TEST_KEY, signal?: AbortSignal) => {
    const up = google.request(
      { model: "gemini-2.5-flash", messages: [{ role: "user", content: "hi" }], ...req },
      { apiKey: key, baseUrl: s.url },
    );
    return fetch(up.url, { method: "POST", headers: up.headers, body: JSON.stringify(up.body), signal });
  };

  test("checks the key and records requests", async () => {
    const res = await post({}, "wrong");
    expect(res.status).toBe(400);
    const b = (await res.json()) as Json;
    expect(b.error.details[0].reason).toBe("API_KEY_INVALID");
    expect(b).not.toHaveProperty("_source");
    const last = s.requests.at(-1)!;
    expect(last).toMatchObject({ method: "POST", path: "/v1beta/models/gemini-2.5-flash:generateContent" });
    expect(last.headers["x-goog-api-key"]).toBe("wrong");
    expect(last.body.contents).toEqual([{ role: "user", parts: [{ text: "hi" }] }]);
  });

  test("answers the fixtures, plain and streamed", async () => {
    const plain = google.response(await (await post({})).json(), meta);
    expect(plain.choices[0].message.content).toMatch(/^AI learns/);
    const tools = [{ type: "function" as const, function: { name: "schedule_meeting" } }];
    const called = google.response(await (await post({ tools })).json(), meta);
    expect(called.choices[0].finish_reason).toBe("tool_calls");
    const res = await post({ stream: true });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const text = await res.text();
    expect(text).toContain("}\r\n\r\ndata: {");
    expect(contentOf(translate(sseEvents(text)))).toBe(STORY);
    expect(s.requests.at(-1)!.path).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
  });

  test("answers queued answers first", async () => {
    s.queue.push({
      status: 429,
      body: googleFixture("error-429-resource-exhausted.json"),
      headers: { "retry-after": "2" },
    });
    const res = await post({});
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(google.errorMessage(429, await res.json())).toMatch(/^You exceeded your current quota/);
    expect((await post({})).status).toBe(200);
  });

  test("streams SLOW answers until the client closes", async () => {
    const ac = new AbortController();
    const res = await post(
      { stream: true, messages: [{ role: "user", content: "go SLOW" }] },
      GOOGLE_TEST_KEY,
      ac.signal,
    );
    const reader = res.body!.getReader();
    let got = "";
    while (!got.includes("tick 1 ")) got += Buffer.from((await reader.read()).value!).toString("utf8");
    ac.abort();
    await reader.cancel().catch(() => undefined);
    await waitFor(() => s.closedEarly !== 0, { what: "the upstream stream closed" });
    expect(s.closedEarly).toBe(1);
  });
});

describe("retryAfter", () => {
  test("reads RetryInfo.retryDelay from a 429 body (Google sends no Retry-After header)", () => {
    const body = JSON.parse(
      readFileSync(join(__dirname, "../../../fixtures/google/error-429-resource-exhausted.json"), "utf8"),
    );
    expect(google.retryAfter!(429, body)).toBe(21);
    expect(google.retryAfter!(500, { error: { message: "x" } })).toBeNull();
    expect(google.retryAfter!(500, "text")).toBeNull();
  });
});
