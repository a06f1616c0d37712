import { parseResponsesRequest } from "../../../../lib/responses/request";
import type { Item } from "../../../../lib/responses/request";
import { expect400, fnTool, type Json, refusal, valid } from "./request-fixtures";

// A continuation (`previous_response_id`: the stored conversation as a prefix), hosted tools an upstream
// runs itself, and what is returned besides the chat body. Input items: request.test.ts; tools: request-tools.test.ts.

/** An earlier turn, as lib/responses/store.ts conversationOf gives it: a question and the call it got. */
const PREFIX: Item[] = [
  { type: "message", role: "user", content: "Weather in Paris?", id: "msg_1" },
  {
    type: "function_call",
    call_id: "call_1",
    name: "get_weather",
    arguments: '{"city":"Paris"}',
    id: "fc_1",
    status: "completed",
  },
];
const ANSWER = { type: "function_call_output", call_id: "call_1", output: "18C" };
const BODY = { model: "m", instructions: "Be terse.", input: [ANSWER], tools: [fnTool("get_weather")] };

/** The [status, param] of the 400 `fn` throws (it must throw). */
function refused(fn: () => unknown): [number | undefined, string | null | undefined] {
  try {
    fn();
  } catch (e) {
    const err = e as { code?: number; data?: { param?: string | null } };
    return [err.code, err.data?.param];
  }
  throw new Error("no error");
}

describe("Responses API request: a continuation", () => {
  test("a function_call_output answering a call of the earlier turn is accepted: prefix, then input", () => {
    const { chat, input } = parseResponsesRequest(BODY, PREFIX);
    expect((chat as Json).messages).toEqual([
      { role: "system", content: "Be terse." },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "18C" },
    ]);
    expect(input).toEqual([ANSWER]);
    valid(chat);
  });

  test("without the earlier turn the same answer names no call: a 400 on input[0].call_id", () => {
    expect(refusal(BODY)).toMatchObject({ status: 400, code: "invalid_tool_call_id", param: "input[0].call_id" });
    expect(refusal(BODY).message).toMatch(/call_1/);
  });

  test("the input may not make a call again with a call_id the earlier turn used", () => {
    const again = { ...PREFIX[1], id: "fc_2" };
    expect(refused(() => parseResponsesRequest({ model: "m", input: [again] }, PREFIX))).toEqual([
      400,
      "input[0].call_id",
    ]);
  });

  test("a string input after the prefix is one user message after it", () => {
    const { chat } = parseResponsesRequest({ model: "m", input: "And tomorrow?" }, PREFIX.slice(0, 1));
    expect((chat as Json).messages).toEqual([
      { role: "user", content: "Weather in Paris?" },
      { role: "user", content: "And tomorrow?" },
    ]);
  });
});

describe("Responses API request: hosted tools the upstream runs", () => {
  const forced = { model: "m", input: "News?", tools: [{ type: "web_search" }], tool_choice: { type: "web_search" } };

  test("a forced hosted tool is accepted, and nothing is named as dropped, when the model's upstream runs them", () => {
    const hostedToolsRun = jest.fn((model: string) => model === "m");
    const t = parseResponsesRequest(forced, [], { hostedToolsRun });
    expect(hostedToolsRun).toHaveBeenCalledWith("m");
    expect(t.droppedTools).toEqual([]);
    expect(t.echo.tool_choice).toEqual({ type: "web_search" });
    expect(t.echo.tools).toEqual([{ type: "web_search" }]);
  });

  test("'required' with only hosted tools is accepted too when they run", () => {
    const t = parseResponsesRequest({ ...forced, tool_choice: "required" }, [], { hostedToolsRun: () => true });
    expect(t.droppedTools).toEqual([]);
  });

  test("hosted tools are still named as dropped with a function tool beside them, unless they run", () => {
    const body = { model: "m", input: "x", tools: [{ type: "web_search" }, fnTool("get_weather")] };
    expect(parseResponsesRequest(body).droppedTools).toEqual(["web_search"]);
    expect(parseResponsesRequest(body, [], { hostedToolsRun: () => false }).droppedTools).toEqual(["web_search"]);
    expect(parseResponsesRequest(body, [], { hostedToolsRun: () => true }).droppedTools).toEqual([]);
  });

  test("by default (and when the model's upstream does not run them) a forced hosted tool is refused", () => {
    expect400(
      { tools: [{ type: "web_search" }], tool_choice: { type: "web_search" } },
      "unsupported_parameter",
      "tool_choice",
    );
    expect(refused(() => parseResponsesRequest(forced, [], { hostedToolsRun: () => false }))).toEqual([
      400,
      "tool_choice",
    ]);
  });
});

describe("Responses API request: input and body", () => {
  test("input is the request's own items: a string is one user message item", () => {
    expect(parseResponsesRequest({ model: "m", input: "Hello" }).input).toEqual([
      { type: "message", role: "user", content: "Hello" },
    ]);
  });

  test("input is the request's own items, without the prefix", () => {
    const own = [{ type: "message", role: "user", content: "Hi", id: "msg_9" }, ANSWER];
    expect(parseResponsesRequest({ model: "m", input: own }, PREFIX).input).toEqual(own);
  });

  test("body is the very object passed in", () => {
    const body = { model: "m", input: "Hello", store: true, previous_response_id: "resp_1" };
    expect(parseResponsesRequest(body).body).toBe(body);
    expect(parseResponsesRequest(BODY, PREFIX).body).toBe(BODY);
  });
});
