import { toOpenAIError } from "../../../../lib/openai/errors";
import { chatRequest, embedRequest, generateRequest } from "../../../../lib/ollama/ingress";

// Ollama's requests (lib/ollama/ingress.ts) as the router's OpenAI bodies, through the three entry points the
// listener calls: what each field becomes, and the 400 (status, param, code) of what is refused

/** The error a call throws, as the edge renders it. */
function refusal(work: () => unknown): { status: number; param: string | null; code: string | null } {
  let thrown: unknown;
  try {
    work();
  } catch (err) {
    thrown = err;
  }
  if (thrown === undefined) throw new Error("did not throw");
  const e = toOpenAIError(thrown);
  return { status: e.status, param: e.body.error.param, code: e.body.error.code };
}

const user = (content: string) => ({ role: "user", content });
const chat = (extra: Record<string, unknown> = {}) => ({ model: "llama3:8b", messages: [user("hi")], ...extra });

describe("chatRequest: fields", () => {
  test("every option maps to its OpenAI field; num_ctx and keep_alive are taken and left out of the body", () => {
    const { body, stream } = chatRequest(
      chat({
        keep_alive: "5m",
        options: {
          num_predict: 64,
          temperature: 0.7,
          top_p: 0.95,
          stop: ["</s>", "User:"],
          seed: 42,
          presence_penalty: 0.5,
          frequency_penalty: 0.25,
          num_ctx: 8192,
        },
      }),
    );
    expect(stream).toBe(true);
    expect(body).toEqual({
      model: "llama3:8b",
      messages: [user("hi")],
      stream: true,
      max_tokens: 64,
      temperature: 0.7,
      top_p: 0.95,
      stop: ["</s>", "User:"],
      seed: 42,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
    });
  });

  test("a negative num_predict (-1 unlimited, -2 fill the context) is dropped; 0 and null values are handled", () => {
    expect(chatRequest(chat({ options: { num_predict: -1 } })).body).not.toHaveProperty("max_tokens");
    expect(chatRequest(chat({ options: { num_predict: -2, temperature: 0 } })).body).toMatchObject({ temperature: 0 });
    expect(chatRequest(chat({ options: { num_predict: -2 } })).body).not.toHaveProperty("max_tokens");
    expect(chatRequest(chat({ options: { num_predict: 0 } })).body.max_tokens).toBe(0);
    expect(chatRequest(chat({ options: { temperature: null } })).body).not.toHaveProperty("temperature");
    expect(chatRequest(chat({ options: null })).body).toEqual({
      model: "llama3:8b",
      messages: [user("hi")],
      stream: true,
    });
  });

  test("an unknown option is a 400 naming options.<name>, code unsupported_parameter", () => {
    for (const name of ["num_gpu", "num_thread", "mirostat", "repeat_penalty", "top_k"]) {
      expect(refusal(() => chatRequest(chat({ options: { temperature: 1, [name]: 1 } })))).toEqual({
        status: 400,
        param: `options.${name}`,
        code: "unsupported_parameter",
      });
    }
    // a long name is cut in the param
    const long = "x".repeat(300);
    expect(refusal(() => chatRequest(chat({ options: { [long]: 1 } }))).param).toBe(`options.${"x".repeat(100)}`);
    // options that are no object
    expect(refusal(() => chatRequest(chat({ options: [1] }))).status).toBe(400);
    expect(refusal(() => chatRequest(chat({ options: "fast" }))).status).toBe(400);
  });

  test("stream defaults to true; only stream: false turns it off", () => {
    expect(chatRequest(chat())).toMatchObject({ stream: true, body: { stream: true } });
    expect(chatRequest(chat({ stream: true }))).toMatchObject({ stream: true, body: { stream: true } });
    expect(chatRequest(chat({ stream: false }))).toMatchObject({ stream: false, body: { stream: false } });
  });

  test('format "json" is json_object; a schema is a strict json_schema; empty is none; anything else a 400', () => {
    expect(chatRequest(chat({ format: "json" })).body.response_format).toEqual({ type: "json_object" });
    const schema = {
      type: "object",
      properties: { name: { type: "string" }, age: { type: "integer" } },
      required: ["name", "age"],
    };
    expect(chatRequest(chat({ format: schema })).body.response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "format", schema, strict: true },
    });
    for (const none of ["", null, undefined]) {
      expect(chatRequest(chat({ format: none })).body).not.toHaveProperty("response_format");
    }
    for (const bad of ["yaml", "JSON", 1, true, ["json"]]) {
      expect(refusal(() => chatRequest(chat({ format: bad })))).toEqual({
        status: 400,
        param: "format",
        code: "invalid_value",
      });
    }
  });

  test("think true (or a level) is a 400; think false is fine", () => {
    for (const think of [true, "high", "low"]) {
      expect(refusal(() => chatRequest(chat({ think })))).toEqual({
        status: 400,
        param: "think",
        code: "unsupported_parameter",
      });
    }
    expect(chatRequest(chat({ think: false })).body).not.toHaveProperty("think");
  });

  test("an unknown top-level field is a 400 naming it", () => {
    for (const field of ["temperature", "max_tokens", "suffix", "prompt", "n"]) {
      expect(refusal(() => chatRequest(chat({ [field]: 1 })))).toEqual({
        status: 400,
        param: field,
        code: "unknown_parameter",
      });
    }
  });

  test("model and messages are required; the body must be an object", () => {
    expect(refusal(() => chatRequest({ messages: [user("x")] })).param).toBe("model");
    expect(refusal(() => chatRequest({ model: "", messages: [user("x")] })).param).toBe("model");
    expect(refusal(() => chatRequest({ model: "m" })).param).toBe("messages");
    expect(refusal(() => chatRequest({ model: "m", messages: "hi" })).param).toBe("messages");
    for (const body of [null, "x", 3, []]) expect(refusal(() => chatRequest(body)).status).toBe(400);
  });

  test("tools pass through as they are (Ollama's shape is OpenAI's)", () => {
    const tools = [
      {
        type: "function",
        function: {
          name: "weather",
          description: "Weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    expect(chatRequest(chat({ tools })).body.tools).toEqual(tools);
    expect(chatRequest(chat({ tools: null })).body).not.toHaveProperty("tools");
  });
});

describe("chatRequest: messages", () => {
  test("roles and text; a missing or null content is empty text", () => {
    const { body } = chatRequest({
      model: "m",
      messages: [
        { role: "system", content: "Be brief." },
        user("hi"),
        { role: "assistant" },
        { role: "user", content: null },
      ],
    });
    expect(body.messages).toEqual([
      { role: "system", content: "Be brief." },
      user("hi"),
      { role: "assistant", content: "" },
      { role: "user", content: "" },
    ]);
  });

  test("images become image_url parts with a data URL, after the text", () => {
    const { body } = chatRequest({
      model: "llava",
      messages: [{ role: "user", content: "what is in these?", images: ["iVBORw0KGgo=", "R0lGODlh"] }],
    });
    expect(body.messages).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "what is in these?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          { type: "image_url", image_url: { url: "data:image/png;base64,R0lGODlh" } },
        ],
      },
    ]);
    // an empty list is no images
    expect(chatRequest({ model: "m", messages: [{ ...user("x"), images: [] }] }).body.messages).toEqual([user("x")]);
    expect(refusal(() => chatRequest({ model: "m", messages: [{ ...user("x"), images: "AAAA" }] }))).toEqual({
      status: 400,
      param: "messages[0].images",
      code: "invalid_value",
    });
  });

  test("an assistant's tool calls get ids call_<i>_<j>, arguments as JSON text; tool messages answer them in order", () => {
    const { body } = chatRequest({
      model: "m",
      messages: [
        user("weather in Paris and Oslo?"),
        {
          role: "assistant",
          content: "Let me check.",
          tool_calls: [
            { function: { name: "weather", arguments: { city: "Paris", units: { temp: "C" } } } },
            { function: { name: "weather", arguments: { city: "Oslo" } } },
          ],
        },
        { role: "tool", content: "sunny, 21" },
        { role: "tool", content: "rain, 9" },
        { role: "assistant", content: "Paris is sunny; Oslo rainy." },
        user("and the time in Tokyo?"),
        { role: "assistant", content: "", tool_calls: [{ function: { name: "time", arguments: { zone: "JST" } } }] },
        { role: "tool", content: "09:00", tool_name: "time" },
      ],
    });
    const messages = body.messages as Array<Record<string, unknown>>;
    expect(messages[1]).toEqual({
      role: "assistant",
      content: "Let me check.",
      tool_calls: [
        {
          id: "call_1_0",
          type: "function",
          function: { name: "weather", arguments: '{"city":"Paris","units":{"temp":"C"}}' },
        },
        { id: "call_1_1", type: "function", function: { name: "weather", arguments: '{"city":"Oslo"}' } },
      ],
    });
    expect(messages[2]).toEqual({ role: "tool", tool_call_id: "call_1_0", content: "sunny, 21" });
    expect(messages[3]).toEqual({ role: "tool", tool_call_id: "call_1_1", content: "rain, 9" });
    expect(messages[4]).toEqual({ role: "assistant", content: "Paris is sunny; Oslo rainy." });
    expect(messages[6]).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_6_0", type: "function", function: { name: "time", arguments: '{"zone":"JST"}' } }],
    });
    expect(messages[7]).toEqual({ role: "tool", tool_call_id: "call_6_0", content: "09:00" });
  });

  test("a tool message naming its tool answers that tool's first open call, whatever the order", () => {
    const { body } = chatRequest({
      model: "m",
      messages: [
        user("x"),
        {
          role: "assistant",
          tool_calls: [
            { function: { name: "a", arguments: {} } },
            { function: { name: "b", arguments: {} } },
            { function: { name: "a", arguments: {} } },
          ],
        },
        { role: "tool", tool_name: "b", content: "B" },
        { role: "tool", tool_name: "a", content: "A1" },
        { role: "tool", content: "A2" },
      ],
    });
    const tools = (body.messages as Array<Record<string, unknown>>).slice(2);
    expect(tools).toEqual([
      { role: "tool", tool_call_id: "call_1_1", content: "B" },
      { role: "tool", tool_call_id: "call_1_0", content: "A1" },
      { role: "tool", tool_call_id: "call_1_2", content: "A2" },
    ]);
  });

  test("arguments already given as text are kept; missing arguments are {}", () => {
    const { body } = chatRequest({
      model: "m",
      messages: [
        user("x"),
        {
          role: "assistant",
          tool_calls: [{ function: { name: "f", arguments: '{"q":1}' } }, { function: { name: "g" } }],
        },
        { role: "tool", content: "1" },
        { role: "tool", content: "2" },
      ],
    });
    const calls = (body.messages as Array<{ tool_calls?: Array<{ function: { arguments: string } }> }>)[1].tool_calls;
    expect(calls?.map((c) => c.function.arguments)).toEqual(['{"q":1}', "{}"]);
  });

  test("a tool message answering nothing is a 400 with code invalid_tool_call_id", () => {
    const noCall = refusal(() => chatRequest({ model: "m", messages: [user("x"), { role: "tool", content: "r" }] }));
    expect(noCall).toEqual({ status: 400, param: "messages[1]", code: "invalid_tool_call_id" });
    // every call answered already
    const answered = refusal(() =>
      chatRequest({
        model: "m",
        messages: [
          user("x"),
          { role: "assistant", tool_calls: [{ function: { name: "f", arguments: {} } }] },
          { role: "tool", content: "1" },
          { role: "tool", content: "2" },
        ],
      }),
    );
    expect(answered).toEqual({ status: 400, param: "messages[3]", code: "invalid_tool_call_id" });
    // naming a tool that was not called
    const otherName = refusal(() =>
      chatRequest({
        model: "m",
        messages: [
          user("x"),
          { role: "assistant", tool_calls: [{ function: { name: "f", arguments: {} } }] },
          { role: "tool", tool_name: "g", content: "1" },
        ],
      }),
    );
    expect(otherName).toEqual({ status: 400, param: "messages[2]", code: "invalid_tool_call_id" });
  });

  test("a bad role, a non-text content, a tool call without a name: a 400 naming the place", () => {
    expect(refusal(() => chatRequest({ model: "m", messages: [{ role: "developer", content: "x" }] }))).toEqual({
      status: 400,
      param: "messages[0].role",
      code: "invalid_value",
    });
    expect(
      refusal(() => chatRequest({ model: "m", messages: [user("x"), { role: "user", content: [{ text: "y" }] }] })),
    ).toEqual({ status: 400, param: "messages[1].content", code: "invalid_value" });
    expect(
      refusal(() =>
        chatRequest({
          model: "m",
          messages: [user("x"), { role: "assistant", tool_calls: [{ function: { arguments: {} } }] }],
        }),
      ),
    ).toMatchObject({ status: 400, param: "messages[1].tool_calls[0]" });
    expect(refusal(() => chatRequest({ model: "m", messages: ["hi"] })).status).toBe(400);
  });
});

describe("generateRequest", () => {
  test("system and prompt become a system and a user message", () => {
    const g = generateRequest({ model: "m", system: "You are a poet.", prompt: "Write a haiku.", keep_alive: 0 });
    expect(g).toEqual({
      body: {
        model: "m",
        messages: [
          { role: "system", content: "You are a poet." },
          { role: "user", content: "Write a haiku." },
        ],
        stream: true,
      },
      stream: true,
      raw: false,
      load: false,
    });
    // no system (or an empty one): only the user's turn
    expect(generateRequest({ model: "m", prompt: "p", system: "" }).body.messages).toEqual([user("p")]);
  });

  test("options, format and images apply to the chat it becomes", () => {
    const g = generateRequest({
      model: "m",
      prompt: "describe",
      images: ["AAAA"],
      format: "json",
      stream: false,
      options: { num_predict: 10, seed: 1, num_ctx: 2048 },
    });
    expect(g.stream).toBe(false);
    expect(g.body).toEqual({
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "describe" },
            { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
          ],
        },
      ],
      stream: false,
      max_tokens: 10,
      seed: 1,
      response_format: { type: "json_object" },
    });
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", images: [1] }))).toMatchObject({
      status: 400,
      param: "images",
    });
  });

  test("raw sends the prompt as a text completion body (system is the template's, left out)", () => {
    const g = generateRequest({
      model: "m",
      prompt: "[INST] hi [/INST]",
      raw: true,
      system: "ignored",
      stream: false,
      options: { temperature: 0, stop: ["[INST]"] },
    });
    expect(g).toEqual({
      body: { model: "m", prompt: "[INST] hi [/INST]", stream: false, temperature: 0, stop: ["[INST]"] },
      stream: false,
      raw: true,
      load: false,
    });
    expect(generateRequest({ model: "m", prompt: "x", raw: false }).raw).toBe(false);
  });

  test("an empty or missing prompt only loads the model (unless it has images)", () => {
    expect(generateRequest({ model: "m" }).load).toBe(true);
    expect(generateRequest({ model: "m", prompt: "" }).load).toBe(true);
    expect(generateRequest({ model: "m", prompt: "", raw: true }).load).toBe(true);
    expect(generateRequest({ model: "m", prompt: "", images: [] }).load).toBe(true);
    expect(generateRequest({ model: "m", prompt: "", images: ["AAAA"] }).load).toBe(false);
    expect(generateRequest({ model: "m", prompt: " " }).load).toBe(false);
  });

  test("suffix, template and a non-empty context are 400s naming each; empty ones are fine", () => {
    const refused = { status: 400, code: "unsupported_parameter" };
    expect(refusal(() => generateRequest({ model: "m", prompt: "def f(", suffix: "return x" }))).toEqual({
      ...refused,
      param: "suffix",
    });
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", template: "{{ .Prompt }}" }))).toEqual({
      ...refused,
      param: "template",
    });
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", context: [128006, 882] }))).toEqual({
      ...refused,
      param: "context",
    });
    const fine = generateRequest({ model: "m", prompt: "x", suffix: "", template: null, context: [] });
    expect(fine.body.messages).toEqual([user("x")]);
  });

  test("format with raw is a 400 on format; images with raw are a 400 on images, not dropped", () => {
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", raw: true, format: "json" }))).toEqual({
      status: 400,
      param: "format",
      code: "unsupported_parameter",
    });
    expect(
      refusal(() => generateRequest({ model: "m", prompt: "x", raw: true, format: { type: "object" } })).param,
    ).toBe("format");
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", raw: true, images: ["AAAA"] }))).toEqual({
      status: 400,
      param: "images",
      code: "unsupported_parameter",
    });
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", raw: true, images: "AAAA" })).param).toBe("images");
    // a bad format is refused as such, raw or not
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", format: "xml" })).param).toBe("format");
  });

  test("think, unknown fields, bad prompt or system, unknown options: a 400 naming each", () => {
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", think: true })).param).toBe("think");
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", messages: [] }))).toEqual({
      status: 400,
      param: "messages",
      code: "unknown_parameter",
    });
    expect(refusal(() => generateRequest({ model: "m", prompt: ["x"] }))).toEqual({
      status: 400,
      param: "prompt",
      code: "invalid_value",
    });
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", system: 1 })).param).toBe("system");
    expect(refusal(() => generateRequest({ model: "m", prompt: "x", options: { num_gpu: 99 } })).param).toBe(
      "options.num_gpu",
    );
    expect(refusal(() => generateRequest({ prompt: "x" })).param).toBe("model");
  });
});

describe("embedRequest", () => {
  test("input: a text (single) or a list of texts", () => {
    expect(embedRequest({ model: "nomic-embed-text", input: "why is the sky blue?" })).toEqual({
      body: { model: "nomic-embed-text", input: "why is the sky blue?" },
      single: true,
    });
    expect(embedRequest({ model: "e", input: ["a", "b", ""] })).toEqual({
      body: { model: "e", input: ["a", "b", ""] },
      single: false,
    });
    expect(embedRequest({ model: "e", input: ["only"] }).single).toBe(false);
  });

  test("the legacy /api/embeddings takes prompt", () => {
    expect(embedRequest({ model: "e", prompt: "hello" }, true)).toEqual({
      body: { model: "e", input: "hello" },
      single: true,
    });
    // input is /api/embed's; prompt is /api/embeddings'
    expect(refusal(() => embedRequest({ model: "e", input: "hello" }, true))).toEqual({
      status: 400,
      param: "prompt",
      code: "invalid_value",
    });
    expect(refusal(() => embedRequest({ model: "e", prompt: "hello" }))).toEqual({
      status: 400,
      param: "input",
      code: "invalid_value",
    });
  });

  test("dimensions, truncate true, keep_alive and the node's options are accepted", () => {
    expect(
      embedRequest({
        model: "e",
        input: "x",
        dimensions: 256,
        truncate: true,
        keep_alive: "10m",
        options: { num_ctx: 512 },
      }).body,
    ).toEqual({ model: "e", input: "x", dimensions: 256 });
  });

  test("an empty list or non-texts are a 400 naming input (or prompt)", () => {
    const bad = { status: 400, code: "invalid_value" };
    for (const input of [[], ["a", 2], [null], 5, { text: "a" }, undefined]) {
      expect(refusal(() => embedRequest({ model: "e", input }))).toEqual({ ...bad, param: "input" });
    }
    for (const prompt of [["a", "b"], ["a"], 5, undefined]) {
      expect(refusal(() => embedRequest({ model: "e", prompt }, true))).toEqual({ ...bad, param: "prompt" });
    }
  });

  test("truncate false, generation options, unknown options or fields, no model: a 400", () => {
    expect(refusal(() => embedRequest({ model: "e", input: "x", truncate: false }))).toEqual({
      status: 400,
      param: "truncate",
      code: "unsupported_parameter",
    });
    for (const options of [{ temperature: 0.1 }, { num_predict: 5 }, { seed: 1, num_ctx: 512 }]) {
      expect(refusal(() => embedRequest({ model: "e", input: "x", options }))).toEqual({
        status: 400,
        param: "options",
        code: "unsupported_parameter",
      });
    }
    expect(refusal(() => embedRequest({ model: "e", input: "x", options: { num_batch: 8 } })).param).toBe(
      "options.num_batch",
    );
    expect(refusal(() => embedRequest({ model: "e", input: "x", encoding_format: "float" }))).toEqual({
      status: 400,
      param: "encoding_format",
      code: "unknown_parameter",
    });
    expect(refusal(() => embedRequest({ input: "x" })).param).toBe("model");
  });
});
