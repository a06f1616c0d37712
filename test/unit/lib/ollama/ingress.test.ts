import { toOpenAIError } from "../../../../lib/openai/errors";
import { chatRequest, embedRequest, generateRequest, mapMessages, mapOptions } from "../../../../lib/ollama/ingress";

/** The 400 a call throws: its param and code. */
function refusal(work: () => unknown): { status: number; param: string | null; code: string | null } {
  try {
    work();
  } catch (err) {
    const e = toOpenAIError(err);
    return { status: e.status, param: e.body.error.param, code: e.body.error.code };
  }
  throw new Error("did not throw");
}

describe("Ollama's options", () => {
  test("the ones OpenAI has are mapped; num_ctx is taken and left to the node; a negative num_predict is the node's bound", () => {
    expect(
      mapOptions({
        num_predict: 8,
        temperature: 0.2,
        top_p: 0.9,
        stop: ["x"],
        seed: 3,
        presence_penalty: 1,
        frequency_penalty: -1,
        num_ctx: 4096,
      }),
    ).toEqual({
      max_tokens: 8,
      temperature: 0.2,
      top_p: 0.9,
      stop: ["x"],
      seed: 3,
      presence_penalty: 1,
      frequency_penalty: -1,
    });
    expect(mapOptions({ num_predict: -1 })).toEqual({});
    expect(mapOptions(undefined)).toEqual({});
  });

  test("any other option is refused, naming it", () => {
    expect(refusal(() => mapOptions({ num_gpu: 1 }))).toEqual({
      status: 400,
      param: "options.num_gpu",
      code: "unsupported_parameter",
    });
    expect(refusal(() => mapOptions({ mirostat: 2 })).param).toBe("options.mirostat");
  });
});

describe("/api/chat", () => {
  test("becomes an OpenAI chat request; streamed unless stream is false", () => {
    const { body, stream } = chatRequest({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      options: { num_predict: 4 },
    });
    expect(stream).toBe(true);
    expect(body).toEqual({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 4 });
    expect(chatRequest({ model: "m", messages: [{ role: "user", content: "x" }], stream: false }).stream).toBe(false);
  });

  test("format: json is a JSON object, a schema is a strict json_schema, anything else a 400", () => {
    const msgs = [{ role: "user", content: "x" }];
    expect(chatRequest({ model: "m", messages: msgs, format: "json" }).body.response_format).toEqual({
      type: "json_object",
    });
    const schema = { type: "object", properties: { a: { type: "string" } } };
    expect(chatRequest({ model: "m", messages: msgs, format: schema }).body.response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "format", schema, strict: true },
    });
    expect(refusal(() => chatRequest({ model: "m", messages: msgs, format: 3 })).param).toBe("format");
  });

  test("think, unknown fields, no model, no messages: a 400 naming each", () => {
    const msgs = [{ role: "user", content: "x" }];
    expect(refusal(() => chatRequest({ model: "m", messages: msgs, think: true })).param).toBe("think");
    expect(chatRequest({ model: "m", messages: msgs, think: false }).body.model).toBe("m");
    expect(refusal(() => chatRequest({ model: "m", messages: msgs, temperature: 1 })).param).toBe("temperature");
    expect(refusal(() => chatRequest({ messages: msgs })).param).toBe("model");
    expect(refusal(() => chatRequest({ model: "m", messages: [] })).param).toBe("messages");
    expect(refusal(() => chatRequest([1, 2])).status).toBe(400);
  });

  test("images become image parts", () => {
    const [m] = mapMessages([{ role: "user", content: "look", images: ["AAAA"] }]);
    expect(m).toEqual({
      role: "user",
      content: [
        { type: "text", text: "look" },
        { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
      ],
    });
    expect(refusal(() => mapMessages([{ role: "user", content: "x", images: [1] }])).param).toBe("messages[0].images");
  });

  test("an assistant's tool calls get ids; tool messages answer them by name, or in order", () => {
    const out = mapMessages([
      { role: "user", content: "weather and time?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [
          { function: { name: "weather", arguments: { city: "Paris" } } },
          { function: { name: "time", arguments: { zone: "CET" } } },
        ],
      },
      { role: "tool", content: "12:00", tool_name: "time" },
      { role: "tool", content: "sunny" },
    ]);
    expect(out[1]).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call_1_0", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
        { id: "call_1_1", type: "function", function: { name: "time", arguments: '{"zone":"CET"}' } },
      ],
    });
    expect(out[2]).toEqual({ role: "tool", tool_call_id: "call_1_1", content: "12:00" });
    expect(out[3]).toEqual({ role: "tool", tool_call_id: "call_1_0", content: "sunny" });
  });

  test("a tool message that answers no call, and a bad role: a 400", () => {
    expect(refusal(() => mapMessages([{ role: "tool", content: "x" }]))).toMatchObject({
      param: "messages[0]",
      code: "invalid_tool_call_id",
    });
    expect(refusal(() => mapMessages([{ role: "robot", content: "x" }])).param).toBe("messages[0].role");
    expect(refusal(() => mapMessages([{ role: "user", content: 5 }])).param).toBe("messages[0].content");
  });
});

describe("/api/generate", () => {
  test("system and prompt become a chat turn; raw is a text completion; an empty prompt only loads", () => {
    const g = generateRequest({
      model: "m",
      prompt: "Once",
      system: "Be brief.",
      stream: false,
      options: { num_predict: 5 },
    });
    expect(g).toMatchObject({ raw: false, load: false, stream: false });
    expect(g.body).toEqual({
      model: "m",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Once" },
      ],
      stream: false,
      max_tokens: 5,
    });
    const raw = generateRequest({ model: "m", prompt: "Once upon", raw: true });
    expect(raw).toMatchObject({ raw: true, body: { model: "m", prompt: "Once upon", stream: true } });
    expect(generateRequest({ model: "m" }).load).toBe(true);
  });

  test("suffix, template, an earlier context, format with raw: a 400 naming each", () => {
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", suffix: "y" })).param).toBe("suffix");
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", template: "{{ .Prompt }}" })).param).toBe(
      "template",
    );
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", context: [1, 2] })).param).toBe("context");
    expect(generateRequest({ model: "m", prompt: "x", context: [] }).load).toBe(false);
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", raw: true, format: "json" })).param).toBe("format");
    expect(refusal(() => generateRequest({ model: "m", prompt: 3 })).param).toBe("prompt");
  });
});

describe("/api/embed and /api/embeddings", () => {
  test("a text or a list; the older prompt", () => {
    expect(embedRequest({ model: "m", input: "a" })).toEqual({ body: { model: "m", input: "a" }, single: true });
    expect(embedRequest({ model: "m", input: ["a", "b"] }).body.input).toEqual(["a", "b"]);
    expect(embedRequest({ model: "m", prompt: "a" }, true).body).toEqual({ model: "m", input: "a" });
  });

  test("an empty list, non-texts, truncate false, generation options: a 400 naming each", () => {
    expect(refusal(() => embedRequest({ model: "m", input: [] })).param).toBe("input");
    expect(refusal(() => embedRequest({ model: "m", input: [1] })).param).toBe("input");
    expect(refusal(() => embedRequest({ model: "m" }, true)).param).toBe("prompt");
    expect(refusal(() => embedRequest({ model: "m", input: "a", truncate: false })).param).toBe("truncate");
    expect(refusal(() => embedRequest({ model: "m", input: "a", options: { temperature: 1 } })).param).toBe("options");
  });
});
