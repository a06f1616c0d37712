import { anthropic } from "../../../../lib/providers/anthropic";
import type { OpenAIChatRequest, SseEvent } from "../../../../lib/providers/types";
import { ProviderError } from "../../../../lib/providers/types";
import { waitFor } from "../../../helpers/wait";
import { ANTHROPIC_TEST_KEY, anthropicFixture, startAnthropicStandIn } from "../../../helpers/standins/anthropic";
import { anthropicSetup, contentOf, finishes, sseEvents, text, toolDeltas, user, WEATHER } from "./helpers";

// Anthropic's requests (messages, tools, images), answers, streams, errors and its stand-in.
// Its parameters: provider-anthropic-params.test.ts; the Messages API ingress: anthropic-ingress.test.ts.
const { cfg, meta, body, fixtureEvents, translate } = anthropicSetup;

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
