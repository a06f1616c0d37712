import { OllamaClock, OllamaStreamWriter, toOllama } from "../../../../lib/ollama/egress";

// The router's OpenAI answers as Ollama's (lib/ollama/egress.ts): whole answers, NDJSON stream lines, and the
// clock behind the done line's durations. The clock reads process.hrtime.bigint(): where the durations' values
// matter it is given set instants, so nothing waits

type Json = Record<string, unknown>;

/** The instants the clock reads next, in order (ns): its start, then each firstToken/totals. */
function instants(...ns: number[]): void {
  const spy = jest.spyOn(process.hrtime, "bigint");
  for (const t of ns) spy.mockReturnValueOnce(BigInt(t));
}

afterEach(() => jest.restoreAllMocks());

const DURATIONS = ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] as const;

function expectDurations(line: Json): void {
  for (const key of DURATIONS) {
    expect(Number.isInteger(line[key])).toBe(true);
    expect(line[key] as number).toBeGreaterThanOrEqual(0);
  }
  expect(line.prompt_eval_duration as number).toBeLessThanOrEqual(line.total_duration as number);
  expect(line.eval_duration as number).toBeLessThanOrEqual(line.total_duration as number);
}

const usage = { prompt_tokens: 26, completion_tokens: 298 };
const answer = (choice: Json, u: unknown = usage) => ({
  id: "chatcmpl-1",
  object: "chat.completion",
  choices: [{ index: 0, ...choice }],
  usage: u,
});
const delta = (d: Json, finish: string | null = null) => ({
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: d, finish_reason: finish }],
});

describe("OllamaClock", () => {
  test("durations from its start, the first token and now; load_duration from loadMs", () => {
    instants(1_000, 1_500, 4_000);
    const clock = new OllamaClock();
    clock.firstToken();
    expect(clock.totals(usage, 1.5)).toEqual({
      total_duration: 3_000,
      load_duration: 1_500_000,
      prompt_eval_count: 26,
      prompt_eval_duration: 500,
      eval_count: 298,
      eval_duration: 2_500,
    });
  });

  test("only the first token counts", () => {
    // start, first token, totals: a later firstToken does not read the clock
    instants(0, 100, 1_000, 5_000);
    const clock = new OllamaClock();
    clock.firstToken();
    clock.firstToken();
    expect(clock.totals(null)).toMatchObject({ prompt_eval_duration: 100, eval_duration: 900, total_duration: 1_000 });
  });

  test("no token: the whole time is the prompt's; no usage: counts are 0", () => {
    instants(10, 70);
    expect(new OllamaClock().totals(undefined)).toEqual({
      total_duration: 60,
      load_duration: 0,
      prompt_eval_count: 0,
      prompt_eval_duration: 60,
      eval_count: 0,
      eval_duration: 0,
    });
  });

  test("load_duration is whole nanoseconds", () => {
    const clock = new OllamaClock();
    expect(clock.totals(null, 0.0004).load_duration).toBe(400);
    expect(clock.totals(null, 1e-7).load_duration).toBe(0);
    expect(clock.totals(null, 2.0000004).load_duration).toBe(2_000_000);
    expectDurations(clock.totals(null, 12.345678));
  });

  test("on the real clock: prompt_eval_duration ≤ total_duration, all non-negative integers", () => {
    const clock = new OllamaClock();
    clock.firstToken();
    const t = clock.totals({ prompt_tokens: 1 }, 3);
    expectDurations(t);
    expect(t.load_duration).toBe(3_000_000);
    expect(t.eval_count).toBe(0);
  });
});

describe("toOllama: a whole chat answer", () => {
  test("the message, done_reason stop, counts from usage, durations in ns", () => {
    const out = toOllama(
      "chat",
      "llama3.2:latest",
      answer({ message: { role: "assistant", content: "The sky is blue." }, finish_reason: "stop" }),
      new OllamaClock(),
    );
    expect(out).toMatchObject({
      model: "llama3.2:latest",
      message: { role: "assistant", content: "The sky is blue." },
      done: true,
      done_reason: "stop",
      prompt_eval_count: 26,
      eval_count: 298,
      load_duration: 0,
    });
    expect(out).not.toHaveProperty("context");
    expect(out).not.toHaveProperty("response");
    expect(new Date(out.created_at as string).toISOString()).toBe(out.created_at);
    expectDurations(out);
  });

  test("done_reason: length stays length; tool_calls, content_filter and none are stop", () => {
    const reason = (finish_reason: string | null | undefined) =>
      toOllama("chat", "m", answer({ message: { content: "x" }, finish_reason }), new OllamaClock()).done_reason;
    expect(reason("length")).toBe("length");
    expect(reason("stop")).toBe("stop");
    expect(reason("tool_calls")).toBe("stop");
    expect(reason("content_filter")).toBe("stop");
    expect(reason(null)).toBe("stop");
    expect(reason(undefined)).toBe("stop");
  });

  test("tool calls: arguments parsed to objects; text that is no JSON object is kept as it is", () => {
    const args = ['{"city":"Paris","days":[1,2]}', "", "{not json", "null", "[1,2]", "42", '"Paris"'];
    const out = toOllama(
      "chat",
      "m",
      answer({
        message: {
          role: "assistant",
          content: null,
          tool_calls: args.map((a, i) => ({
            id: `call_${i}`,
            type: "function",
            function: { name: `f${i}`, arguments: a },
          })),
        },
        finish_reason: "tool_calls",
      }),
      new OllamaClock(),
    );
    expect(out.done_reason).toBe("stop");
    expect(out.message).toEqual({
      role: "assistant",
      content: "",
      tool_calls: [
        { function: { name: "f0", arguments: { city: "Paris", days: [1, 2] } } },
        { function: { name: "f1", arguments: {} } },
        { function: { name: "f2", arguments: "{not json" } },
        { function: { name: "f3", arguments: "null" } },
        { function: { name: "f4", arguments: "[1,2]" } },
        { function: { name: "f5", arguments: "42" } },
        { function: { name: "f6", arguments: '"Paris"' } },
      ],
    });
  });

  test("no tool_calls key without calls; no choices or usage: empty text and zero counts", () => {
    const none = toOllama("chat", "m", answer({ message: { content: "x", tool_calls: [] } }), new OllamaClock());
    expect(none.message).toEqual({ role: "assistant", content: "x" });
    const empty = toOllama("chat", "m", { choices: [], usage: null }, new OllamaClock());
    expect(empty).toMatchObject({
      message: { role: "assistant", content: "" },
      done: true,
      done_reason: "stop",
      prompt_eval_count: 0,
      eval_count: 0,
    });
    expectDurations(empty);
  });

  test("durations from the clock: no first token seen, the whole time is the prompt's", () => {
    instants(2_000, 9_000);
    const out = toOllama("chat", "m", answer({ message: { content: "x" } }), new OllamaClock());
    expect(out).toMatchObject({ total_duration: 7_000, prompt_eval_duration: 7_000, eval_duration: 0 });
  });
});

describe("toOllama: a whole generate answer", () => {
  test("response (from a chat message or a completion's text), context [], done_reason", () => {
    const fromChat = toOllama(
      "generate",
      "m",
      answer({ message: { content: "Once upon a time" }, finish_reason: "length" }),
      new OllamaClock(),
    );
    expect(fromChat).toMatchObject({
      model: "m",
      response: "Once upon a time",
      done: true,
      done_reason: "length",
      context: [],
      prompt_eval_count: 26,
      eval_count: 298,
    });
    expect(fromChat).not.toHaveProperty("message");
    expectDurations(fromChat);
    const fromText = toOllama(
      "generate",
      "m",
      { object: "text_completion", choices: [{ text: " there was", finish_reason: "stop" }], usage },
      new OllamaClock(),
    );
    expect(fromText).toMatchObject({ response: " there was", done_reason: "stop", context: [] });
  });
});

describe("OllamaStreamWriter: chat", () => {
  test("each piece of text is a line with done false; empty deltas give no line", () => {
    const w = new OllamaStreamWriter("chat", "qwen2.5:7b", new OllamaClock());
    expect(w.push(delta({ role: "assistant", content: "" }))).toEqual([]);
    expect(w.push(delta({ content: null }))).toEqual([]);
    expect(w.push(delta({}))).toEqual([]);
    const lines = [...w.push(delta({ content: "Hel" })), ...w.push(delta({ content: "lo" }))];
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => (l.message as Json).content)).toEqual(["Hel", "lo"]);
    for (const line of lines) {
      expect(Object.keys(line).sort()).toEqual(["created_at", "done", "message", "model"]);
      expect(line).toMatchObject({ model: "qwen2.5:7b", message: { role: "assistant" }, done: false });
    }
    expect(w.push(delta({}, "stop"))).toEqual([]);
    expect(w.push({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } })).toEqual([]);
    const end = w.end();
    expect(end).toHaveLength(1);
    expect(end[0]).toMatchObject({
      model: "qwen2.5:7b",
      message: { role: "assistant", content: "" },
      done: true,
      done_reason: "stop",
      prompt_eval_count: 5,
      eval_count: 2,
      load_duration: 0,
    });
    expect(end[0]).not.toHaveProperty("context");
    expectDurations(end[0]);
  });

  test("the done line: length from the finish, counts from the usage chunk, load from loadMs", () => {
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    w.push(delta({ content: "a" }));
    w.push(delta({ content: "b" }, "length"));
    w.push({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 } });
    expect(w.end(250)[0]).toMatchObject({
      done: true,
      done_reason: "length",
      prompt_eval_count: 11,
      eval_count: 2,
      load_duration: 250_000_000,
    });
  });

  test("no usage chunk: counts are 0", () => {
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    w.push(delta({ content: "a" }, "stop"));
    expect(w.end()[0]).toMatchObject({ done: true, prompt_eval_count: 0, eval_count: 0 });
  });

  test("durations: the prompt's until the first text, the answer's after", () => {
    // start, first text, totals in end()
    instants(1_000, 4_000, 10_000);
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    w.push(delta({ role: "assistant" }));
    w.push(delta({ content: "x" }));
    w.push(delta({ content: "y" }));
    expect(w.end()[0]).toMatchObject({ total_duration: 9_000, prompt_eval_duration: 3_000, eval_duration: 6_000 });
  });

  test("tool call fragments are put together across chunks and sent once whole, before the done line", () => {
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    const call = (index: number, fn: Json) =>
      delta({ tool_calls: [{ index, id: `c${index}`, type: "function", function: fn }] });
    expect(w.push(delta({ role: "assistant", content: null }))).toEqual([]);
    expect(w.push(call(0, { name: "get_", arguments: "" }))).toEqual([]);
    expect(w.push(call(0, { name: "weather", arguments: '{"city":' }))).toEqual([]);
    expect(w.push(call(1, { name: "get_time", arguments: '{"zone"' }))).toEqual([]);
    expect(w.push(call(0, { arguments: '"Paris"}' }))).toEqual([]);
    expect(w.push(delta({ tool_calls: [{ index: 1, function: { arguments: ':"CET"}' } }] }, "tool_calls"))).toEqual([]);
    w.push({ choices: [], usage: { prompt_tokens: 40, completion_tokens: 18 } });
    const end = w.end();
    expect(end).toHaveLength(2);
    expect(end[0]).toMatchObject({
      model: "m",
      message: {
        role: "assistant",
        content: "",
        tool_calls: [
          { function: { name: "get_weather", arguments: { city: "Paris" } } },
          { function: { name: "get_time", arguments: { zone: "CET" } } },
        ],
      },
      done: false,
    });
    expect(end[1]).toMatchObject({ done: true, done_reason: "stop", prompt_eval_count: 40, eval_count: 18 });
    expect(end[1].message).toEqual({ role: "assistant", content: "" });
  });

  test("text before tool calls: its lines as it comes, the calls at the end; bad arguments kept as text", () => {
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    expect(w.push(delta({ content: "Checking." }))).toHaveLength(1);
    expect(w.push(delta({ tool_calls: [{ index: 0, function: { name: "f", arguments: "{oops" } }] }))).toEqual([]);
    const [calls] = w.end();
    expect((calls.message as Json).tool_calls).toEqual([{ function: { name: "f", arguments: "{oops" } }]);
  });

  test("a stream of only tool calls: the answer's time counts from the first fragment", () => {
    // start, first fragment, totals in end()
    instants(0, 2_000, 5_000);
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    w.push(delta({ tool_calls: [{ index: 0, function: { name: "f", arguments: "{}" } }] }, "tool_calls"));
    w.push({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 7 } });
    const done = w.end()[1];
    expect(done).toMatchObject({ total_duration: 5_000, prompt_eval_duration: 2_000, eval_duration: 3_000 });
    expect(done.eval_count).toBe(7);
  });

  test("a usage chunk with no choices gives no line; lines are one JSON text each (NDJSON)", () => {
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    expect(w.push({ choices: [], usage })).toEqual([]);
    expect(w.push({})).toEqual([]);
    const lines = [...w.push(delta({ content: "two\nlines" })), ...w.end()];
    for (const line of lines) {
      const text = JSON.stringify(line);
      expect(text).not.toContain("\n");
      expect(JSON.parse(text)).toEqual(line);
    }
    expect(lines[0].message).toEqual({ role: "assistant", content: "two\nlines" });
  });
});

describe("OllamaStreamWriter: generate", () => {
  test("a completion's chunks (choices[0].text) are response lines; the done line has context []", () => {
    const w = new OllamaStreamWriter("generate", "m", new OllamaClock());
    const text = (t: string, finish: string | null = null) => ({
      object: "text_completion",
      choices: [{ index: 0, text: t, finish_reason: finish }],
    });
    const [a] = w.push(text("Once"));
    expect(a).toMatchObject({ model: "m", response: "Once", done: false });
    expect(Object.keys(a).sort()).toEqual(["created_at", "done", "model", "response"]);
    expect(w.push(text(""))).toEqual([]);
    expect(w.push(text(" upon", "length"))[0]).toMatchObject({ response: " upon", done: false });
    w.push({ choices: [], usage: { prompt_tokens: 2, completion_tokens: 2 } });
    const end = w.end(1);
    expect(end).toHaveLength(1);
    expect(end[0]).toMatchObject({
      response: "",
      done: true,
      done_reason: "length",
      context: [],
      prompt_eval_count: 2,
      eval_count: 2,
      load_duration: 1_000_000,
    });
    expect(end[0]).not.toHaveProperty("message");
    expectDurations(end[0]);
  });

  test("a chat's deltas are response lines too; tool calls are not a generate answer's", () => {
    const w = new OllamaStreamWriter("generate", "m", new OllamaClock());
    expect(w.push(delta({ role: "assistant" }))).toEqual([]);
    expect(w.push(delta({ content: "hi" }))[0]).toMatchObject({ response: "hi", done: false });
    w.push(delta({ tool_calls: [{ index: 0, function: { name: "f", arguments: "{}" } }] }, "tool_calls"));
    const end = w.end();
    expect(end).toHaveLength(1);
    expect(end[0]).toMatchObject({ response: "", done: true, done_reason: "stop", context: [] });
  });
});
