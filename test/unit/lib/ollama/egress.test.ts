import { OllamaClock, OllamaStreamWriter, toOllama } from "../../../../lib/ollama/egress";

const usage = { prompt_tokens: 7, completion_tokens: 3 };

describe("a whole answer in Ollama's shape", () => {
  test("chat: the message, done_reason, counts and durations in ns", () => {
    const out = toOllama(
      "chat",
      "m:latest",
      { choices: [{ message: { content: "hey" }, finish_reason: "length" }], usage },
      new OllamaClock(),
    );
    expect(out).toMatchObject({
      model: "m:latest",
      message: { role: "assistant", content: "hey" },
      done: true,
      done_reason: "length",
      prompt_eval_count: 7,
      eval_count: 3,
      load_duration: 0,
    });
    expect(Number.isInteger(out.total_duration)).toBe(true);
    expect(out.total_duration as number).toBeGreaterThanOrEqual(out.prompt_eval_duration as number);
    expect(Date.parse(out.created_at as string)).not.toBeNaN();
  });

  test("chat: tool calls with their arguments as objects (text kept when it is no JSON), done_reason stop", () => {
    const out = toOllama(
      "chat",
      "m",
      {
        choices: [
          {
            message: {
              content: null,
              tool_calls: [
                { function: { name: "f", arguments: '{"a":1}' } },
                { function: { name: "g", arguments: "not json" } },
              ],
            },
            finish_reason: "tool_calls",
          },
        ],
      },
      new OllamaClock(),
    );
    expect(out.message).toEqual({
      role: "assistant",
      content: "",
      tool_calls: [
        { function: { name: "f", arguments: { a: 1 } } },
        { function: { name: "g", arguments: "not json" } },
      ],
    });
    expect(out.done_reason).toBe("stop");
    expect(out.eval_count).toBe(0);
  });

  test("generate: response and an empty context; a text completion's text", () => {
    const out = toOllama(
      "generate",
      "m",
      { choices: [{ text: "abc", finish_reason: "stop" }], usage },
      new OllamaClock(),
    );
    expect(out).toMatchObject({ response: "abc", done: true, done_reason: "stop", context: [], eval_count: 3 });
  });
});

describe("a stream as Ollama's lines", () => {
  const chunk = (delta: object, finish: string | null = null) => ({ choices: [{ delta, finish_reason: finish }] });

  test("chat: a line per piece of text, then the done line with the usage chunk's counts", () => {
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    expect(w.push(chunk({ role: "assistant" }))).toEqual([]);
    const [a] = w.push(chunk({ content: "he" }));
    expect(a).toMatchObject({ model: "m", message: { role: "assistant", content: "he" }, done: false });
    w.push(chunk({ content: "y" }, "length"));
    expect(w.push({ choices: [], usage })).toEqual([]);
    const end = w.end(12);
    expect(end).toHaveLength(1);
    expect(end[0]).toMatchObject({
      message: { role: "assistant", content: "" },
      done: true,
      done_reason: "length",
      prompt_eval_count: 7,
      eval_count: 3,
      load_duration: 12_000_000,
    });
  });

  test("chat: a tool call's fragments are put together and sent whole before the done line", () => {
    const w = new OllamaStreamWriter("chat", "m", new OllamaClock());
    w.push(chunk({ tool_calls: [{ index: 0, function: { name: "weather", arguments: '{"ci' } }] }));
    w.push(chunk({ tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] }, "tool_calls"));
    const end = w.end();
    expect(end).toHaveLength(2);
    expect(end[0]).toMatchObject({
      message: {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "weather", arguments: { city: "Paris" } } }],
      },
      done: false,
    });
    expect(end[1]).toMatchObject({ done: true, done_reason: "stop" });
  });

  test("generate: response lines from chat deltas or completion text, and a done line with context", () => {
    const w = new OllamaStreamWriter("generate", "m", new OllamaClock());
    expect(w.push({ choices: [{ text: "ab", finish_reason: null }] })[0]).toMatchObject({
      response: "ab",
      done: false,
    });
    expect(w.push(chunk({ content: "c" }))[0]).toMatchObject({ response: "c" });
    expect(w.end()[0]).toMatchObject({ response: "", done: true, context: [] });
  });
});
