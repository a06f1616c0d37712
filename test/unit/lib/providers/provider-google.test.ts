import { readFileSync } from "node:fs";
import { join } from "node:path";
import { google } from "../../../../lib/providers/google";
import type { OpenAIMessage } from "../../../../lib/providers/types";
import { ProviderError } from "../../../../lib/providers/types";
import { googleFixture } from "../../../helpers/standins/google";
import { contentOf, data, finishes, GOOGLE_STORY as STORY, googleSetup } from "./helpers";

// Google's requests (messages, tools, images), answers, streams and errors.
// Its parameters: provider-google-params.test.ts; over HTTP to the stand-in: provider-google-standin.test.ts.
const { cfg, meta, body, fixtureEvents, translate } = googleSetup;

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
