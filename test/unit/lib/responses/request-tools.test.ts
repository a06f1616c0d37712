import { chatOf, expect400, fnTool, type Json, parse, valid, WEATHER } from "./request-fixtures";

// Tools, tool_choice, text.format and the other top-level fields; input items and messages: request.test.ts.

const chatTool = (name: string, extra: object = {}) => ({
  type: "function",
  function: { name, parameters: WEATHER, ...extra },
});

describe("Responses API request: tools", () => {
  test("function tools become chat tools; hosted tools are dropped and named once", () => {
    const { chat, droppedTools } = parse({
      input: "x",
      tools: [
        fnTool("get_weather", { description: "Weather", strict: true }),
        { type: "web_search", search_context_size: "low" },
        { type: "function", name: "noop", parameters: null, strict: null, description: null },
        { type: "file_search", vector_store_ids: ["vs_1"] },
        { type: "web_search" },
        { type: "code_interpreter", container: { type: "auto" } },
        { type: "mcp", server_label: "s", server_url: "https://x.test" },
        { type: "custom", name: "apply_patch" },
        { type: "image_generation" },
        { type: "local_shell" },
        { type: "computer_use_preview", display_width: 1, display_height: 1, environment: "linux" },
        { type: "some_future_tool" },
      ],
    });
    expect((chat as Json).tools).toEqual([
      chatTool("get_weather", { description: "Weather", strict: true }),
      { type: "function", function: { name: "noop" } },
    ]);
    expect(droppedTools).toEqual([
      "web_search",
      "file_search",
      "code_interpreter",
      "mcp",
      "custom",
      "image_generation",
      "local_shell",
      "computer_use_preview",
      "some_future_tool",
    ]);
    valid(chat);
  });

  test("a namespace's function tools are flattened; its custom tools dropped", () => {
    const { chat, droppedTools } = parse({
      input: "x",
      tools: [
        {
          type: "namespace",
          name: "crm",
          description: "CRM tools",
          tools: [
            { type: "function", name: "find_customer", description: "Find", parameters: WEATHER },
            { type: "custom", name: "free_text" },
            { type: "function", name: "list_orders" },
          ],
        },
      ],
    });
    expect((chat as Json).tools).toEqual([
      chatTool("find_customer", { description: "Find" }),
      { type: "function", function: { name: "list_orders" } },
    ]);
    expect(droppedTools).toEqual(["custom"]);
    const bad = { type: "namespace", name: "crm", tools: [{ type: "function", name: "a b" }] };
    expect400({ tools: [bad] }, "invalid_value", "tools[0].tools[0].name");
    expect400({ tools: [{ type: "namespace", name: "crm" }] }, "missing_required_parameter", "tools[0].tools");
  });

  test("bad function tools are a 400 naming the field", () => {
    expect400({ tools: [{ type: "function" }] }, "missing_required_parameter", "tools[0].name");
    expect400({ tools: [fnTool("f", { parameters: "x" })] }, "invalid_value", "tools[0].parameters");
    expect400({ tools: [fnTool("f"), fnTool("f")] }, "duplicate_tool_name", "tools[1].name");
    expect400({ tools: [{ name: "f" }] }, "missing_required_parameter", "tools[0].type");
  });

  test("tool_choice and parallel_tool_calls", () => {
    const tools = [fnTool("get_weather"), { type: "web_search" }];
    const choice = (tool_choice: unknown) => chatOf({ input: "x", tools, tool_choice }).tool_choice;
    expect(["auto", "none", "required"].map(choice)).toEqual(["auto", "none", "required"]);
    expect(choice({ type: "function", name: "get_weather" })).toEqual({
      type: "function",
      function: { name: "get_weather" },
    });
    expect(chatOf({ input: "x", tools, parallel_tool_calls: false }).parallel_tool_calls).toBe(false);
    // forcing what the router does not run
    for (const forced of [
      { type: "web_search" },
      { type: "file_search" },
      { type: "web_search_preview" },
      { type: "mcp", server_label: "s" },
      { type: "custom", name: "x" },
      { type: "allowed_tools", mode: "auto", tools: [] },
    ]) {
      expect400({ tools, tool_choice: forced }, "unsupported_parameter", "tool_choice");
    }
    expect400({ tools: [{ type: "web_search" }], tool_choice: "required" }, "unsupported_parameter", "tool_choice");
    expect400({ tool_choice: "required" }, "invalid_value", "tool_choice");
    expect400({ tools, tool_choice: { type: "function", name: "nope" } }, "invalid_value", "tool_choice.name");
    expect400({ tools, tool_choice: { type: "function" } }, "missing_required_parameter", "tool_choice.name");
    expect400({ tools, tool_choice: "any" }, "invalid_value", "tool_choice");
    // without function tools, tool_choice and parallel_tool_calls stay out of the chat body (echoed still)
    const hostedOnly = parse({
      input: "x",
      tools: [{ type: "web_search" }],
      tool_choice: "auto",
      parallel_tool_calls: true,
    });
    expect(hostedOnly.chat).toEqual({ model: "m", messages: [{ role: "user", content: "x" }] });
    expect(hostedOnly.echo).toMatchObject({
      tool_choice: "auto",
      parallel_tool_calls: true,
      tools: [{ type: "web_search" }],
    });
  });
});

describe("Responses API request: parameters", () => {
  test("text.format becomes response_format; verbosity passes on", () => {
    const format = (f: object) => chatOf({ input: "x", text: { format: f } }).response_format;
    expect(format({ type: "text" })).toBeUndefined();
    expect(format({ type: "json_object" })).toEqual({ type: "json_object" });
    expect(format({ type: "json_schema", name: "weather", schema: WEATHER })).toEqual({
      type: "json_schema",
      json_schema: { name: "weather", schema: WEATHER },
    });
    const full = { type: "json_schema", name: "weather", schema: WEATHER, description: "W", strict: true };
    const chat = chatOf({ input: "x", text: { format: full, verbosity: "low" } });
    expect(chat).toMatchObject({
      response_format: {
        type: "json_schema",
        json_schema: { name: "weather", schema: WEATHER, description: "W", strict: true },
      },
      verbosity: "low",
    });
    valid(chat);
    expect400(
      { text: { format: { type: "json_schema", schema: WEATHER } } },
      "missing_required_parameter",
      "text.format.name",
    );
    expect400({ text: { format: { type: "yaml" } } }, "invalid_value", "text.format.type");
    expect400({ text: { verbosity: "loud" } }, "invalid_value", "text.verbosity");
  });

  test("sampling, limits, labels and stream", () => {
    const chat = chatOf({
      input: "x",
      max_output_tokens: 500,
      temperature: 0.3,
      top_p: 0.9,
      top_logprobs: 2,
      user: "u-1",
      metadata: { team: "a" },
      safety_identifier: "s-1",
      prompt_cache_key: "k-1",
      prompt_cache_retention: "24h",
      service_tier: "flex",
      stream: true,
    });
    expect(chat).toEqual({
      model: "m",
      messages: [{ role: "user", content: "x" }],
      max_completion_tokens: 500,
      temperature: 0.3,
      top_p: 0.9,
      logprobs: true,
      top_logprobs: 2,
      user: "u-1",
      metadata: { team: "a" },
      safety_identifier: "s-1",
      prompt_cache_key: "k-1",
      prompt_cache_retention: "24h",
      service_tier: "flex",
      stream: true,
      stream_options: { include_usage: true },
    });
    valid(chat);
    expect(chatOf({ input: "x", stream: false })).toEqual({ model: "m", messages: [{ role: "user", content: "x" }] });
    expect400({ max_output_tokens: 0 }, "invalid_value", "max_output_tokens");
    expect400({ temperature: 3 }, "invalid_value", "temperature");
    expect400({ top_logprobs: 21 }, "invalid_value", "top_logprobs");
    expect400({ metadata: { a: 1 } }, "invalid_value", "metadata.a");
  });

  test("fields only echoed are accepted and left out of the chat body", () => {
    const accepted = {
      store: false,
      previous_response_id: "resp_1",
      reasoning: { effort: "high", summary: "auto" },
      include: ["reasoning.encrypted_content"],
      truncation: "disabled",
      background: false,
      client_metadata: { session: "s" },
      prompt_cache_options: { mode: "implicit" },
      stream_options: { include_obfuscation: false },
      conversation: null,
      prompt: null,
    };
    const { chat, echo } = parse({ input: "x", ...accepted });
    expect(chat).toEqual({ model: "m", messages: [{ role: "user", content: "x" }] });
    expect(echo).toMatchObject({
      store: false,
      previous_response_id: "resp_1",
      reasoning: { effort: "high", summary: "auto" },
      include: ["reasoning.encrypted_content"],
      client_metadata: { session: "s" },
      truncation: "disabled",
      background: false,
    });
  });

  test("the echo has the response object's defaults", () => {
    expect(parse({ input: "x" }).echo).toEqual({
      instructions: null,
      metadata: {},
      tools: [],
      tool_choice: "auto",
      parallel_tool_calls: true,
      text: { format: { type: "text" } },
      temperature: null,
      top_p: null,
      max_output_tokens: null,
      store: true,
      previous_response_id: null,
      reasoning: null,
      truncation: "disabled",
      background: false,
    });
    const tools = [fnTool("f"), { type: "web_search" }];
    const echo = parse({
      input: "x",
      instructions: "I",
      tools,
      tool_choice: "required",
      text: { verbosity: "low" },
      temperature: 1,
      max_output_tokens: 9,
      user: "u",
    }).echo;
    expect(echo).toMatchObject({
      instructions: "I",
      tools,
      tool_choice: "required",
      text: { format: { type: "text" }, verbosity: "low" },
      temperature: 1,
      max_output_tokens: 9,
      user: "u",
    });
  });

  test("unsupported and unknown fields are a 400 unsupported_parameter naming them", () => {
    const cases: Record<string, unknown> = {
      truncation: "auto",
      background: true,
      conversation: "conv_1",
      prompt: { id: "pmpt_1" },
      max_tool_calls: 3,
      context_management: [{ type: "compaction" }],
      moderation: { model: "omni-moderation-latest" },
      stream_options: { include_obfuscation: true },
      messages: [{ role: "user", content: "x" }],
      max_tokens: 5,
      frobnicate: 1,
    };
    for (const [key, value] of Object.entries(cases)) {
      expect400({ [key]: value }, "unsupported_parameter", key);
    }
  });
});
