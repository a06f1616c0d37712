import { Errors } from "moleculer";
import { apiError, toOpenAIError } from "../../../../lib/openai/errors";
import { chatJob, completionJob, embeddingJob } from "../../../../lib/openai/jobs";
import { chatSchema, completionSchema, embeddingSchema, parseBody } from "../../../../lib/openai/schemas";
import * as fmt from "../../../../lib/openai/format";

const chat = chatSchema(1000);

function rejection(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    return toOpenAIError(err);
  }
  throw new Error("expected a throw");
}

describe("request validation", () => {
  test("accepts a full OpenAI chat body and keeps unknown fields", () => {
    const body = parseBody(chat, {
      model: "m",
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      max_tokens: 10,
      temperature: 0.5,
      top_p: 0.9,
      stop: "x",
      seed: 3,
      stream: true,
      stream_options: { include_usage: true },
      logit_bias: {},
    });
    expect(body.logit_bias).toEqual({});
  });

  test.each([
    [null, null, "invalid_request"],
    [{ messages: [{ role: "user", content: "x" }] }, "model", "missing_required_parameter"],
    [{ model: "", messages: [{ role: "user", content: "x" }] }, "model", "invalid_value"],
    [{ model: "m", messages: [{ role: "user", content: 5 }] }, "messages[0].content", "invalid_value"],
    [{ model: "m", messages: [{ role: "user", content: "x" }], max_tokens: 1.5 }, "max_tokens", "invalid_value"],
    [{ model: "m", messages: [{ role: "user", content: "x" }], max_tokens: 1001 }, "max_tokens", "invalid_value"],
    [{ model: "m", messages: [{ role: "user", content: "x" }], top_p: 0 }, "top_p", "invalid_value"],
    [
      { model: "m", messages: [{ role: "user", content: "x" }], stop: ["a", "b", "c", "d", "e"] },
      "stop",
      "invalid_value",
    ],
    [{ model: "m", messages: [{ role: "user" }] }, "messages[0].content", "missing_required_parameter"],
    [{ model: "m", messages: [{ role: "system", content: null }] }, "messages[0].content", "invalid_value"],
    [
      { model: "m", messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] },
      "messages[0].content[0].text",
      "invalid_value",
    ],
    [{ model: "m".repeat(257), messages: [{ role: "user", content: "x" }] }, "model", "invalid_value"],
    [{ model: "m", messages: [{ role: "user", content: "x" }], user: {} }, "user", "invalid_value"],
  ])("%j is a 400 naming %s", (body, param, code) => {
    const r = rejection(() => parseBody(chat, body));
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param, code, type: "invalid_request_error" });
  });

  test("completion prompts and embedding inputs", () => {
    expect(() => parseBody(completionSchema(10), { model: "m", prompt: ["a", "b"] })).toThrow(/only one prompt/);
    expect(parseBody(embeddingSchema, { model: "m", input: ["a"] }).input).toEqual(["a"]);
    expect(() => parseBody(embeddingSchema, { model: "m", input: [] })).toThrow();
    expect(() => parseBody(embeddingSchema, { model: "m", input: "a", user: {} })).toThrow(/user/);
    expect(() => parseBody(embeddingSchema, { model: "m", input: "" })).toThrow(/input/);
    expect(() => parseBody(embeddingSchema, { model: "m", input: ["a", ""] })).toThrow(/input\[1\]/);
    expect(() => parseBody(embeddingSchema, { model: "m".repeat(300), input: "a" })).toThrow(/model/);
  });
});

describe("jobs", () => {
  test("chat: roles mapped, text parts joined, OpenAI's parameters carried", () => {
    const job = chatJob(
      parseBody(chat, {
        model: "m",
        messages: [
          { role: "developer", content: "rules" },
          {
            role: "user",
            content: [
              { type: "text", text: "a" },
              { type: "text", text: "b" },
            ],
          },
          { role: "assistant", content: null },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
          },
          { role: "tool", tool_call_id: "c1", content: "42" },
        ],
        max_completion_tokens: 7,
        stop: "END",
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(job.requestId).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(job.messages).toEqual([
      { role: "system", content: "rules" },
      { role: "user", content: "ab" },
      { role: "assistant", content: "" },
      { role: "assistant", content: "", toolCalls: [{ id: "c1", name: "f", arguments: "{}" }] },
      { role: "tool", content: "42", toolCallId: "c1" },
    ]);
    expect(job).toMatchObject({ maxTokens: 7, stop: ["END"], stream: true, includeUsage: true });
  });

  test("completion defaults to OpenAI's 16 tokens", () => {
    const job = completionJob(parseBody(completionSchema(100), { model: "m", prompt: ["p"] }));
    expect(job).toMatchObject({ prompt: "p", maxTokens: 16, stream: false });
    expect(job.requestId).toMatch(/^cmpl-/);
  });

  test("embedding input is always a list", () => {
    expect(embeddingJob({ model: "m", input: "x" })).toEqual({ model: "m", input: ["x"] });
  });
});

describe("errors", () => {
  test("apiError keeps status, code, type and param across the wire shape", () => {
    const err = apiError(404, "nope", "model_not_found", { param: "model" });
    // what a remote node receives: only plain fields survive
    const wire = JSON.parse(JSON.stringify({ message: err.message, code: err.code, type: err.type, data: err.data }));
    expect(toOpenAIError(wire)).toEqual({
      status: 404,
      body: { error: { message: "nope", type: "not_found_error", param: "model", code: "model_not_found" } },
    });
  });

  test("Moleculer's own errors map to useful statuses", () => {
    expect(toOpenAIError(new Errors.RequestTimeoutError({ action: "x", nodeID: "n" })).status).toBe(504);
    expect(toOpenAIError(new Errors.RequestRejectedError({ action: "x", nodeID: "n" })).status).toBe(503);
    expect(toOpenAIError(new Errors.ServiceNotAvailableError({ action: "x", nodeID: "n" })).status).toBe(503);
  });

  test("an unknown error is a 500 that does not leak its message", () => {
    expect(toOpenAIError(new TypeError("secret internals"))).toEqual({
      status: 500,
      body: { error: { message: "Internal error", type: "server_error", param: null, code: null } },
    });
    expect(toOpenAIError(undefined).status).toBe(500);
    // the NATS client refusing a message larger than the server's max_payload: the request is too large
    const nats = Object.assign(new Error("MAX_PAYLOAD_EXCEEDED"), { name: "NatsError", code: "MAX_PAYLOAD_EXCEEDED" });
    expect(toOpenAIError(nats)).toMatchObject({
      status: 413,
      body: { error: { type: "invalid_request_error", param: null, code: "request_too_large" } },
    });
  });
});

describe("response builders", () => {
  const meta = { id: "chatcmpl-1", model: "m", created: 1 };
  const result = { text: "hi", finishReason: "stop" as const, promptTokens: 3, completionTokens: 2 };

  test("chat completion and usage", () => {
    expect(fmt.chatCompletion(meta, [result])).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1,
      model: "m",
      choices: [{ index: 0, message: { role: "assistant", content: "hi" }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
  });

  test("n choices: one per generation, the prompt counted once", () => {
    const second = { ...result, text: "yo", completionTokens: 4, finishReason: "length" as const };
    const c = fmt.chatCompletion(meta, [result, second]);
    expect(c.choices.map((x) => [x.index, x.message.content, x.finish_reason])).toEqual([
      [0, "hi", "stop"],
      [1, "yo", "length"],
    ]);
    expect(c.usage).toEqual({ prompt_tokens: 3, completion_tokens: 6, total_tokens: 9 });
  });

  test("a tool call: content null, tool_calls in OpenAI's shape, finish_reason tool_calls", () => {
    const call = { id: "call_1", name: "f", arguments: '{"a":1}' };
    const c = fmt.chatCompletion(meta, [{ ...result, text: "", toolCalls: [call], finishReason: "tool_calls" }]);
    expect(c.choices[0]).toEqual({
      index: 0,
      message: {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: '{"a":1}' } }],
      },
      logprobs: null,
      finish_reason: "tool_calls",
    });
  });

  test("usage chunk has no choices", () => {
    expect(fmt.chatUsageChunk(meta, [result])).toMatchObject({ choices: [], usage: { total_tokens: 5 } });
    expect(fmt.textUsageChunk(meta, result)).toMatchObject({ object: "text_completion", choices: [] });
  });

  test("base64 embeddings are little-endian float32", () => {
    const b64 = fmt.embeddingToBase64([1.5, -2]);
    const bytes = Buffer.from(b64, "base64");
    expect([bytes.readFloatLE(0), bytes.readFloatLE(4)]).toEqual([1.5, -2]);
  });
});
