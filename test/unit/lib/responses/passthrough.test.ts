/**
 * Responses requests passed through to an upstream that speaks the API
 * (lib/responses/passthrough.ts): the body OpenAI or a runtime gets, a
 * continuation's conversation, the tools a runtime is sent, and the model
 * stamped on what comes back.
 */
import { FINAL_EVENTS, nativeBody, stampModel, type NativeResponses } from "../../../../lib/responses/passthrough";
import type { Item, Producer, StoredResponse } from "../../../../lib/responses/store";

const WEATHER = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const fnTool = (name: string) => ({ type: "function", name, parameters: WEATHER });

/** A stored response: one earlier turn (prefix), this turn's input, and an output with reasoning, a message and a call. */
const stored = (over: Partial<StoredResponse> = {}): StoredResponse => ({
  id: "resp_1",
  scope: "key:k1",
  ts: 0,
  model: "m",
  node_id: "node-a",
  producer: "router",
  prefix_json: JSON.stringify([
    { type: "message", role: "user", content: "first", id: "msg_p", status: "completed" },
    {
      type: "message",
      role: "assistant",
      content: [{ type: "output_text", text: "one" }],
      id: "msg_pa",
      status: "completed",
    },
  ]),
  input_json: JSON.stringify([{ type: "message", role: "user", content: "second", id: "msg_i" }]),
  response_json: JSON.stringify({
    id: "resp_1",
    object: "response",
    output: [
      { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "opaque" },
      {
        type: "message",
        id: "msg_o",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: "hi", annotations: [] }],
      },
      { type: "web_search_call", id: "ws_1", status: "completed" },
      {
        type: "function_call",
        id: "fc_1",
        status: "completed",
        call_id: "call_1",
        name: "get_weather",
        arguments: '{"city":"Paris"}',
      },
    ],
  }),
  ...over,
});

/** The conversation of stored(), as new input: no ids, no statuses, no reasoning (nor hosted tool calls). */
const CONVERSATION: Item[] = [
  { type: "message", role: "user", content: "first" },
  { type: "message", role: "assistant", content: [{ type: "output_text", text: "one" }] },
  { type: "message", role: "user", content: "second" },
  { type: "message", role: "assistant", content: [{ type: "output_text", text: "hi", annotations: [] }] },
  { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' },
];

const ANSWER = { type: "function_call_output", call_id: "call_1", output: "18C" };

/** A client's body (the model as the client named it), continuing resp_1 when `previous` is given. */
const native = (body: Record<string, unknown>, previous: StoredResponse | null = null): NativeResponses => ({
  body: {
    model: "openai:gpt-4o-mini",
    ...(previous ? { previous_response_id: previous.id } : {}),
    ...body,
  },
  previous,
});

describe("passthrough: the body an upstream gets", () => {
  test.each(["openai", "runtime"] as const)(
    "without a previous response, %s gets the client's body with the upstream's model name",
    (target) => {
      const n = native({
        input: [{ type: "message", role: "user", content: "Hello" }],
        instructions: "Be terse.",
        temperature: 0.2,
        stream: true,
        store: false,
        metadata: { k: "v" },
        reasoning: { effort: "low" },
      });
      expect(nativeBody(n, target, "gpt-4o-mini")).toEqual({ ...n.body, model: "gpt-4o-mini" });
    },
  );

  test("a string input without a previous response stays a string", () => {
    const out = nativeBody(native({ input: "Hello" }), "runtime", "qwen");
    expect(out).toEqual({ model: "qwen", input: "Hello" });
  });

  test("OpenAI continues a response OpenAI made by previous_response_id: the input is left as it is", () => {
    const n = native({ input: [ANSWER], store: true }, stored({ producer: "openai" }));
    const out = nativeBody(n, "openai", "gpt-4o-mini");
    expect(out).toEqual({ model: "gpt-4o-mini", previous_response_id: "resp_1", input: [ANSWER], store: true });
  });

  test.each<[Producer, "openai" | "runtime"]>([
    ["router", "openai"],
    ["runtime", "openai"],
    ["openai", "runtime"],
    ["runtime", "runtime"],
    ["router", "runtime"],
  ])(
    "a response made by %s, continued on %s: no previous_response_id, the stored conversation before the input",
    (producer, target) => {
      const n = native({ input: [ANSWER], instructions: "Be terse." }, stored({ producer }));
      const out = nativeBody(n, target, "up-model");
      expect(out).not.toHaveProperty("previous_response_id");
      expect(out).toEqual({ model: "up-model", instructions: "Be terse.", input: [...CONVERSATION, ANSWER] });
    },
  );

  test("a string input after the stored conversation is one user message item", () => {
    const out = nativeBody(native({ input: "And tomorrow?" }, stored()), "openai", "gpt-4o-mini");
    expect(out.input).toEqual([...CONVERSATION, { type: "message", role: "user", content: "And tomorrow?" }]);
  });

  test("a conversation with nothing before the input: only the stored input and output are carried", () => {
    const previous = stored({
      prefix_json: "[]",
      response_json: JSON.stringify({ output: [{ type: "reasoning", id: "rs_1", summary: [] }] }),
    });
    const out = nativeBody(native({ input: "next" }, previous), "runtime", "m");
    expect(out.input).toEqual([
      { type: "message", role: "user", content: "second" },
      { type: "message", role: "user", content: "next" },
    ]);
  });

  test("a runtime is sent function tools only: hosted tools left out, a namespace's functions flattened", () => {
    const n = native({
      input: "x",
      tools: [
        { type: "web_search" },
        fnTool("get_weather"),
        { type: "file_search", vector_store_ids: ["vs_1"] },
        {
          type: "namespace",
          name: "crm",
          tools: [fnTool("find_customer"), { type: "custom", name: "free_text" }, fnTool("list_orders")],
        },
        { type: "code_interpreter", container: { type: "auto" } },
      ],
      tool_choice: "auto",
      parallel_tool_calls: false,
    });
    const out = nativeBody(n, "runtime", "m");
    expect(out.tools).toEqual([fnTool("get_weather"), fnTool("find_customer"), fnTool("list_orders")]);
    expect(out).toMatchObject({ tool_choice: "auto", parallel_tool_calls: false });
  });

  test("a runtime left with no function tool gets no tools, tool_choice or parallel_tool_calls", () => {
    const n = native({
      input: "x",
      tools: [{ type: "web_search" }, { type: "namespace", name: "ns", tools: [{ type: "custom", name: "c" }] }],
      tool_choice: "auto",
      parallel_tool_calls: true,
    });
    const out = nativeBody(n, "runtime", "m");
    expect(out).toEqual({ model: "m", input: "x" });
    expect(out).not.toHaveProperty("tools");
    expect(out).not.toHaveProperty("tool_choice");
    expect(out).not.toHaveProperty("parallel_tool_calls");
  });

  test("OpenAI gets every tool as sent (it runs its hosted tools)", () => {
    const tools = [
      { type: "web_search" },
      { type: "namespace", name: "crm", tools: [fnTool("find_customer")] },
      fnTool("get_weather"),
    ];
    const out = nativeBody(native({ input: "x", tools, tool_choice: { type: "web_search" } }), "openai", "m");
    expect(out.tools).toEqual(tools);
    expect(out.tool_choice).toEqual({ type: "web_search" });
  });

  test("the client's request is not changed", () => {
    const n = native(
      {
        input: [ANSWER],
        tools: [{ type: "web_search" }, { type: "namespace", name: "crm", tools: [fnTool("find_customer")] }],
        tool_choice: "auto",
        parallel_tool_calls: true,
      },
      stored(),
    );
    const before = structuredClone(n);
    const out = nativeBody(n, "runtime", "m");
    expect(n).toEqual(before);
    expect(n.body).toMatchObject({ model: "openai:gpt-4o-mini", previous_response_id: "resp_1", input: [ANSWER] });
    expect(out.input).toEqual([...CONVERSATION, ANSWER]);
  });
});

describe("passthrough: what comes back", () => {
  test("a response object gets the model as the client named it; the original is left as it was", () => {
    const response = { id: "resp_1", object: "response", model: "gpt-4o-mini-2024-07-18", output: [] };
    const out = stampModel(response, "openai:gpt-4o-mini");
    expect(out).toEqual({ ...response, model: "openai:gpt-4o-mini" });
    expect(response.model).toBe("gpt-4o-mini-2024-07-18");
  });

  test("an event carrying a response gets the model inside it", () => {
    const event = {
      type: "response.completed",
      sequence_number: 9,
      response: { id: "resp_1", object: "response", model: "gpt-4o-mini-2024-07-18", status: "completed" },
    };
    const out = stampModel(event, "openai:gpt-4o-mini");
    expect(out).toEqual({ ...event, response: { ...event.response, model: "openai:gpt-4o-mini" } });
    expect(out).not.toHaveProperty("model");
    expect(event.response.model).toBe("gpt-4o-mini-2024-07-18");
  });

  test("other events are unchanged", () => {
    const delta = { type: "response.output_text.delta", sequence_number: 3, item_id: "msg_1", delta: "Hi" };
    const error = { type: "error", code: "server_error", message: "boom", param: null };
    expect(stampModel(delta, "m")).toEqual(delta);
    expect(stampModel(error, "m")).toEqual(error);
    expect(stampModel({ type: "x", response: null }, "m")).toEqual({ type: "x", response: null });
  });

  test("the events that end a stream carry the final response; others do not end it", () => {
    for (const t of ["response.completed", "response.incomplete", "response.failed"]) {
      expect(FINAL_EVENTS.has(t)).toBe(true);
    }
    for (const t of ["response.created", "response.in_progress", "response.output_text.done", "error"]) {
      expect(FINAL_EVENTS.has(t)).toBe(false);
    }
  });
});
