import { parseResponsesRequest } from "../../../../lib/responses/request";
import { chatOf, expect400, fnTool, type Json, parse, refusal, valid } from "./request-fixtures";

// Input items and messages; tools, tool_choice, text.format and the other top-level fields: request-tools.test.ts.

const msg = (role: string, content: unknown, extra: object = {}) => ({ type: "message", role, content, ...extra });
const call = (call_id: string, name = "get_weather", args = '{"city":"Paris"}') => ({
  type: "function_call",
  call_id,
  name,
  arguments: args,
});
const output = (call_id: string, out: unknown = "18C") => ({ type: "function_call_output", call_id, output: out });

describe("Responses API request: input", () => {
  test("a string input is one user message; instructions come first as a system message", () => {
    const { chat, droppedTools } = parse({ input: "Hello", instructions: "Be terse." });
    expect(chat).toEqual({
      model: "m",
      messages: [
        { role: "system", content: "Be terse." },
        { role: "user", content: "Hello" },
      ],
    });
    expect(droppedTools).toEqual([]);
    valid(chat);
  });

  test("messages: roles (developer is system), easy messages without type, text parts of each kind", () => {
    const chat = chatOf({
      input: [
        msg("system", "S"),
        msg("developer", [{ type: "input_text", text: "D" }]),
        { role: "user", content: "U" },
        { role: "assistant", content: [{ type: "output_text", text: "A", annotations: [] }], id: "msg_1", phase: null },
        msg("assistant", [{ type: "refusal", refusal: "No." }], { status: "completed" }),
        msg("user", [
          { type: "input_text", text: "one" },
          { type: "input_text", text: "two" },
        ]),
        msg("user", []),
      ],
    });
    expect(chat.messages).toEqual([
      { role: "system", content: "S" },
      { role: "system", content: "D" },
      { role: "user", content: "U" },
      { role: "assistant", content: "A" },
      { role: "assistant", content: "No." },
      {
        role: "user",
        content: [
          { type: "text", text: "one" },
          { type: "text", text: "two" },
        ],
      },
      { role: "user", content: "" },
    ]);
    valid(chat);
  });

  test("images: image_url becomes a chat image part (with its detail); file_id, files and images elsewhere are refused", () => {
    const chat = chatOf({
      input: [
        msg("user", [
          { type: "input_text", text: "What is it?" },
          { type: "input_image", image_url: "https://x.test/a.png", detail: "low" },
          { type: "input_image", image_url: "data:image/png;base64,iVBOR", detail: "original" },
          { type: "input_image", image_url: "https://x.test/b.png" },
        ]),
      ],
    });
    expect(chat.messages[0].content).toEqual([
      { type: "text", text: "What is it?" },
      { type: "image_url", image_url: { url: "https://x.test/a.png", detail: "low" } },
      { type: "image_url", image_url: { url: "data:image/png;base64,iVBOR", detail: "high" } },
      { type: "image_url", image_url: { url: "https://x.test/b.png" } },
    ]);
    valid(chat);
    const image = (p: object, role = "user") => ({ input: [msg(role, [{ type: "input_image", ...p }])] });
    expect400(image({ file_id: "file-1", detail: "auto" }), "unsupported_content", "input[0].content[0].file_id");
    expect400(image({ detail: "auto" }), "missing_required_parameter", "input[0].content[0].image_url");
    expect400(
      image({ image_url: "https://x.test/a.png" }, "system"),
      "unsupported_content",
      "input[0].content[0].type",
    );
    const file = { input: [msg("user", [{ type: "input_file", file_id: "file-1" }])] };
    expect400(file, "unsupported_content", "input[0].content[0].type", /File inputs/);
  });

  test("function calls join the assistant message before them; outputs become tool messages", () => {
    const chat = chatOf({
      tools: [fnTool("get_weather"), fnTool("get_time")],
      input: [
        msg("user", "Weather and time in Paris?"),
        msg("assistant", "Let me look."),
        { ...call("call_1"), id: "fc_1", status: "completed" },
        call("call_2", "get_time", "{}"),
        output("call_1"),
        output("call_2", [
          { type: "input_text", text: "12:" },
          { type: "input_text", text: "00" },
        ]),
        call("call_3"),
        output("call_3", "19C"),
        msg("user", "Thanks"),
      ],
    });
    const fn = (id: string, name: string, args: string) => ({
      id,
      type: "function",
      function: { name, arguments: args },
    });
    expect(chat.messages).toEqual([
      { role: "user", content: "Weather and time in Paris?" },
      {
        role: "assistant",
        content: "Let me look.",
        tool_calls: [fn("call_1", "get_weather", '{"city":"Paris"}'), fn("call_2", "get_time", "{}")],
      },
      { role: "tool", tool_call_id: "call_1", content: "18C" },
      { role: "tool", tool_call_id: "call_2", content: "12:00" },
      { role: "assistant", content: null, tool_calls: [fn("call_3", "get_weather", '{"city":"Paris"}')] },
      { role: "tool", tool_call_id: "call_3", content: "19C" },
      { role: "user", content: "Thanks" },
    ]);
    valid(chat);
  });

  test("reasoning items are left out, and do not split an assistant turn", () => {
    const reasoning = { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "gAAAA" };
    const chat = chatOf({
      tools: [fnTool("get_weather")],
      input: [msg("user", "Hi"), reasoning, msg("assistant", "Checking."), reasoning, call("c1"), output("c1")],
    });
    expect(chat.messages).toEqual([
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Checking.", tool_calls: [expect.objectContaining({ id: "c1" })] },
      { role: "tool", tool_call_id: "c1", content: "18C" },
    ]);
  });

  test("a function_call_output must answer an earlier function_call", () => {
    expect400({ input: [msg("user", "x"), output("call_9")] }, "invalid_tool_call_id", "input[1].call_id");
    expect400({ input: [output("c1"), call("c1")] }, "invalid_tool_call_id", "input[0].call_id");
    expect400({ input: [call("c1"), call("c1")] }, "invalid_value", "input[1].call_id", /used twice/);
    const image = [{ type: "input_image", image_url: "https://x.test/a.png" }];
    expect400({ input: [call("c1"), output("c1", image)] }, "unsupported_content", "input[1].output[0].type");
  });

  test("other item types are refused as unsupported_item naming input[i].type", () => {
    for (const type of [
      "item_reference",
      "web_search_call",
      "custom_tool_call",
      "computer_call_output",
      "compaction",
    ]) {
      expect400({ input: [msg("user", "x"), { type, id: "x_1" }] }, "unsupported_item", "input[1].type");
    }
  });

  test("a malformed item is a 400 naming its field", () => {
    const cases: Array<[unknown, string, string]> = [
      [msg("tool", "x"), "input[0].role", "invalid_value"],
      [msg("user", 5), "input[0].content", "invalid_value"],
      [msg("user", [{ type: "input_text" }]), "input[0].content[0].text", "missing_required_parameter"],
      [msg("user", [{ type: "input_audio" }]), "input[0].content[0].type", "invalid_value"],
      [{ type: "function_call", name: "f", arguments: "{}" }, "input[0].call_id", "missing_required_parameter"],
      [call("c1", "bad name"), "input[0].name", "invalid_value"],
      [{ ...call("c1"), arguments: { city: "Paris" } }, "input[0].arguments", "invalid_value"],
      [{ content: "no role" }, "input[0].type", "missing_required_parameter"],
      ["just a string", "input[0]", "invalid_value"],
    ];
    for (const [item, param, code] of cases) expect400({ input: [item] }, code, param);
    expect400({ input: 5 }, "invalid_value", "input");
    expect400({ input: [] }, "invalid_value", "input", /at least one message/);
    expect400({ input: [{ type: "reasoning", summary: [] }] }, "invalid_value", "input");
    expect(() => parse({ input: [], instructions: "Say hi." })).not.toThrow();
    expect400({ input: undefined }, "missing_required_parameter", "input");
    expect400({ model: undefined }, "missing_required_parameter", "model");
    expect400({ model: "x".repeat(257) }, "invalid_value", "model");
    expect(refusal([1])).toMatchObject({ status: 400 });
  });
});

test("a coding agent's request becomes a valid chat body", () => {
  const shell = {
    type: "function",
    name: "shell",
    description: "Runs a shell command",
    strict: false,
    parameters: { type: "object", properties: { command: { type: "array", items: { type: "string" } } } },
  };
  const body = {
    model: "gpt-5-codex",
    instructions: "You are a coding agent.",
    input: [
      msg("developer", [{ type: "input_text", text: "<permissions>workspace-write</permissions>" }]),
      msg("user", [{ type: "input_text", text: "<environment_context>cwd=/repo</environment_context>" }]),
      msg("user", [{ type: "input_text", text: "Fix the failing test." }]),
      {
        type: "reasoning",
        id: "rs_1",
        summary: [{ type: "summary_text", text: "Look first" }],
        encrypted_content: "gAAA",
      },
      { type: "function_call", id: "fc_1", call_id: "call_a", name: "shell", arguments: '{"command":["ls"]}' },
      { type: "function_call_output", call_id: "call_a", output: "src test" },
      { type: "reasoning", id: "rs_2", summary: [], encrypted_content: "gBBB", content: null },
      msg("assistant", [{ type: "output_text", text: "Running the tests.", annotations: [] }], { id: "msg_1" }),
      { type: "function_call", call_id: "call_b", name: "shell", arguments: '{"command":["npm","test"]}' },
      { type: "function_call_output", call_id: "call_b", output: "1 failing" },
    ],
    tools: [
      shell,
      { type: "web_search" },
      {
        type: "namespace",
        name: "mcp__fs",
        description: "Filesystem",
        tools: [{ type: "function", name: "read_file", parameters: { type: "object", properties: {} }, strict: null }],
      },
    ],
    tool_choice: "auto",
    parallel_tool_calls: true,
    reasoning: { summary: "auto" },
    store: false,
    stream: true,
    include: ["reasoning.encrypted_content"],
    prompt_cache_key: "019a-session",
    client_metadata: { session_id: "019a-session" },
  };
  const { chat, droppedTools, echo } = parseResponsesRequest(body);
  const parsed = valid(chat);
  expect(droppedTools).toEqual(["web_search"]);
  expect(parsed.messages.map((m: Json) => m.role)).toEqual([
    "system",
    "system",
    "user",
    "user",
    "assistant",
    "tool",
    "assistant",
    "tool",
  ]);
  expect(parsed.messages[4]).toEqual({
    role: "assistant",
    content: null,
    tool_calls: [{ id: "call_a", type: "function", function: { name: "shell", arguments: '{"command":["ls"]}' } }],
  });
  expect(parsed.messages[6]).toMatchObject({ content: "Running the tests.", tool_calls: [{ id: "call_b" }] });
  expect(parsed.tools?.map((t) => t.function.name)).toEqual(["shell", "read_file"]);
  expect(chat).toMatchObject({
    tool_choice: "auto",
    parallel_tool_calls: true,
    stream: true,
    stream_options: { include_usage: true },
    prompt_cache_key: "019a-session",
  });
  for (const key of ["store", "reasoning", "include", "client_metadata", "instructions", "input"]) {
    expect(chat).not.toHaveProperty(key);
  }
  expect(echo).toMatchObject({
    store: false,
    reasoning: { summary: "auto" },
    tools: body.tools,
    instructions: "You are a coding agent.",
    client_metadata: { session_id: "019a-session" },
  });
});
