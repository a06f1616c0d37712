import type { OpenAIChatCompletion, OpenAIFinishReason, OpenAIToolCall } from "../../../../lib/providers/types";
import { newResponseId, toResponse } from "../../../../lib/responses/output";
import { type Json, meta, RESPONSE_USAGE, USAGE } from "./output-fixtures";

// Whole answers; the event stream is in output-stream.test.ts.

const call = (id: string, name: string, args: string): OpenAIToolCall => ({
  id,
  type: "function",
  function: { name, arguments: args },
});

function completion(
  content: string | null,
  finish: OpenAIFinishReason = "stop",
  tool_calls?: OpenAIToolCall[],
): OpenAIChatCompletion {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1_700_000_000,
    model: "qwen3-8b",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content, ...(tool_calls ? { tool_calls } : {}) },
        logprobs: null,
        finish_reason: finish,
      },
    ],
    usage: USAGE,
  };
}

describe("newResponseId", () => {
  it("is resp_ and 48 hex digits, different each time", () => {
    expect(newResponseId()).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(newResponseId()).not.toBe(newResponseId());
  });
});

describe("toResponse", () => {
  it("turns an answer into a completed response with a message", () => {
    const r: Json = toResponse(meta(), completion("Hello there."));
    expect(r).toEqual({
      id: "resp_0123",
      object: "response",
      created_at: 1_700_000_000,
      status: "completed",
      error: null,
      incomplete_details: null,
      instructions: null,
      max_output_tokens: null,
      metadata: {},
      parallel_tool_calls: true,
      previous_response_id: null,
      reasoning: null,
      store: null,
      temperature: null,
      text: { format: { type: "text" } },
      tool_choice: "auto",
      tools: [],
      top_p: null,
      truncation: "disabled",
      user: null,
      model: "qwen3-8b",
      output: [
        {
          type: "message",
          id: expect.stringMatching(/^msg_[0-9a-f]{48}$/),
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: "Hello there.", annotations: [], logprobs: [] }],
        },
      ],
      usage: RESPONSE_USAGE,
    });
    expect(r).not.toHaveProperty("output_text");
  });

  it("repeats the request's fields, and keeps defaults for null ones", () => {
    const tools = [{ type: "function", name: "f", parameters: {}, strict: true }];
    const echo = {
      instructions: "Be brief.",
      metadata: { k: "v" },
      tools,
      tool_choice: "required",
      temperature: 0.2,
      max_output_tokens: 50,
      store: false,
      user: "u1",
      parallel_tool_calls: null,
      text: undefined,
      top_logprobs: 0,
    };
    const r: Json = toResponse({ ...meta(echo), model: "openai:gpt-4o" }, completion("x"));
    expect(r).toMatchObject({ ...echo, parallel_tool_calls: true, text: { format: { type: "text" } } });
    expect(r.model).toBe("openai:gpt-4o");
  });

  it("makes a function_call item per tool call, and no message when content is null", () => {
    const calls = [call("call_a", "get_weather", '{"city":"Paris"}'), call("call_b", "get_time", "{}")];
    const r: Json = toResponse(meta(), completion(null, "tool_calls", calls));
    expect(r.status).toBe("completed");
    expect(r.output).toEqual([
      {
        type: "function_call",
        id: expect.stringMatching(/^fc_/),
        call_id: "call_a",
        name: "get_weather",
        arguments: '{"city":"Paris"}',
        status: "completed",
      },
      {
        type: "function_call",
        id: expect.stringMatching(/^fc_/),
        call_id: "call_b",
        name: "get_time",
        arguments: "{}",
        status: "completed",
      },
    ]);
    expect(r.output[0].id).not.toBe(r.output[1].id);
  });

  it("puts text before the calls when there is both", () => {
    const r: Json = toResponse(meta(), completion("Let me look.", "tool_calls", [call("c", "f", "{}")]));
    expect(r.output.map((i: Json) => i.type)).toEqual(["message", "function_call"]);
  });

  it("gives an empty message when nothing was said", () => {
    const r: Json = toResponse(meta(), completion(null));
    expect(r.output).toEqual([
      expect.objectContaining({ type: "message", content: [expect.objectContaining({ text: "" })] }),
    ]);
  });

  it("is incomplete (max_output_tokens) when the answer was cut by length", () => {
    const r: Json = toResponse(meta(), completion("Once upon a", "length"));
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.output[0].status).toBe("incomplete");
  });

  it("is incomplete (content_filter) when a filter stopped it", () => {
    const r: Json = toResponse(meta(), completion("", "content_filter"));
    expect(r).toMatchObject({ status: "incomplete", incomplete_details: { reason: "content_filter" } });
  });

  it("uses choice 0 of several", () => {
    const c = completion("first");
    c.choices = [{ ...c.choices[0], index: 1, message: { role: "assistant", content: "second" } }, c.choices[0]];
    expect((toResponse(meta(), c) as Json).output[0].content[0].text).toBe("first");
  });

  it("passes cached and reasoning token counts on when the chat usage has them", () => {
    const c = completion("x");
    c.usage = Object.assign(
      { ...USAGE },
      {
        prompt_tokens_details: { cached_tokens: 5 },
        completion_tokens_details: { reasoning_tokens: 3 },
      },
    );
    expect((toResponse(meta(), c) as Json).usage).toEqual({
      ...RESPONSE_USAGE,
      input_tokens_details: { cached_tokens: 5 },
      output_tokens_details: { reasoning_tokens: 3 },
    });
  });
});
