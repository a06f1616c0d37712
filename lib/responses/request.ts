/**
 * OpenAI's Responses API in front (`POST /v1/responses`): a Responses request
 * becomes the router's chat request (an OpenAI chat body, validated again on
 * the chat path), so Responses clients (the `openai` SDK, coding agents) work
 * against any model. Hosted tools (web search, file search…) are left out of
 * the model's tool list and named; what only the response object needs
 * (instructions, store, reasoning…) is kept aside to echo back.
 * Format: platform.openai.com/docs/api-reference/responses/create.
 */
import { z } from "zod";
import { badRequest } from "../openai/errors";
import { MAX_MODEL_CHARS, MAX_USER_CHARS, parseBody } from "../openai/schemas";
import type { OpenAIContentPart, OpenAIMessage, OpenAIToolCall, OpenAIToolChoice } from "../providers/types";

/** An input item: its `type` and the rest. */
export type Item = Record<string, unknown> & { type: string };

export interface ResponsesTranslation {
  /** The chat body for the router's chat path (validated again there by chatSchema). */
  chat: Record<string, unknown>;
  /** Hosted tool types left out of the model's tool list (not forced): named in X-Router-Dropped-Tools (none when they run). */
  droppedTools: string[];
  /** What the response object echoes back: instructions, metadata, tools (as sent), tool_choice, parallel_tool_calls, text, temperature, top_p, max_output_tokens, store, previous_response_id, user, reasoning. */
  echo: Record<string, unknown>;
  /** The request's own input as items (a string input is one user message). */
  input: Item[];
  /** The validated request, as the client sent it: passed on to upstreams that speak the Responses API. */
  body: Record<string, unknown>;
}

/** A 400 for what the router cannot do: `what` names it ("File inputs are"). */
const refuse = (what: string, param: string, code = "unsupported_parameter") =>
  badRequest(`${what} not supported by the router's Responses API.`, param, code);

/** Parses one piece of the body: a 400 names the field under `at` (e.g. `input[2].call_id`). */
function parseAt<T extends z.ZodType>(schema: T, value: unknown, at: string): z.infer<T> {
  return parseBody(z.object({ [at]: schema }), { [at]: value })[at] as z.infer<T>;
}

const functionName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'");
const jsonObject = z.record(z.string(), z.unknown());
const callId = z.string().min(1).max(256);
/** A string, or an array of parts: parsed as parts (a string is one input_text part). */
const partsOf = <T extends z.ZodType>(part: T) =>
  z.preprocess(
    (v) => (typeof v === "string" ? [{ type: "input_text", text: v }] : v),
    z.array(part, { error: "must be a string or an array of content parts" }),
  );

const inputText = z.looseObject({ type: z.literal("input_text"), text: z.string() });
const inputImage = z.looseObject({
  type: z.literal("input_image"),
  image_url: z.string().nullable().optional(),
  file_id: z.string().nullable().optional(),
  detail: z.enum(["low", "high", "auto", "original"]).nullable().optional(),
});
const inputFile = z.looseObject({ type: z.literal("input_file") });
const part = z.discriminatedUnion("type", [
  inputText,
  z.looseObject({ type: z.literal("output_text"), text: z.string() }),
  z.looseObject({ type: z.literal("refusal"), refusal: z.string() }),
  inputImage,
  inputFile,
]);

/** The input items the router translates; any other type is a 400 `unsupported_item`. */
const ITEMS = {
  message: z.looseObject({
    role: z.enum(["user", "system", "developer", "assistant"]),
    content: partsOf(part),
  }),
  function_call: z.looseObject({ call_id: callId, name: functionName, arguments: z.string().max(1_000_000) }),
  function_call_output: z.looseObject({
    call_id: callId,
    output: partsOf(z.discriminatedUnion("type", [inputText, inputImage, inputFile])),
  }),
  // the model's earlier reasoning (often encrypted for OpenAI's models): accepted, left out
  reasoning: z.looseObject({}),
};

const functionTool = z.looseObject({
  name: functionName,
  description: z.string().max(100_000).nullable().optional(),
  parameters: jsonObject.nullable().optional(),
  strict: z.boolean().nullable().optional(),
});
const namespaceTool = z.looseObject({
  name: z.string().max(256),
  tools: z.array(z.looseObject({ type: z.string().min(1).max(64) })),
});

const textConfig = z.looseObject({
  format: z
    .discriminatedUnion("type", [
      z.looseObject({ type: z.literal("text") }),
      z.looseObject({ type: z.literal("json_object") }),
      z.looseObject({
        type: z.literal("json_schema"),
        name: functionName,
        schema: jsonObject,
        description: z.string().max(100_000).optional(),
        strict: z.boolean().nullable().optional(),
      }),
    ])
    .optional(),
  verbosity: z.enum(["low", "medium", "high"]).nullable().optional(),
});

const label = z.string().max(1024).nullable().optional();

export const responsesSchema = z.looseObject({
  model: z.string().min(1, "model must not be empty").max(MAX_MODEL_CHARS),
  input: z.preprocess(
    (v) => (typeof v === "string" ? [{ type: "message", role: "user", content: v }] : v),
    z.array(
      // an EasyInputMessage may leave out its type
      z.preprocess(
        (v) => (v && typeof v === "object" && !("type" in v) && "role" in v ? { ...v, type: "message" } : v),
        z.looseObject({ type: z.string().min(1).max(64) }),
      ),
      { error: "must be a string or an array of input items" },
    ),
  ),
  instructions: z.string().nullable().optional(),
  tools: z.array(z.looseObject({ type: z.string().min(1).max(64) })).optional(),
  tool_choice: z
    .union([z.enum(["none", "auto", "required"]), z.looseObject({ type: z.string().min(1).max(64) })])
    .optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  text: textConfig.optional(),
  max_output_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_obfuscation: z.boolean().optional() }).nullable().optional(),
  user: z.string().max(MAX_USER_CHARS).optional(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullable().optional(),
  safety_identifier: label,
  prompt_cache_key: label,
  prompt_cache_retention: z.enum(["in_memory", "24h"]).nullable().optional(),
  service_tier: z.string().max(64).nullable().optional(),
  // conversation state (services/api/responses-routes.ts)
  store: z.boolean().nullable().optional(),
  previous_response_id: z.string().min(1, "must not be empty").max(1024).nullable().optional(),
  // accepted and only echoed (a model without reasoning returns none)
  reasoning: z.looseObject({}).nullable().optional(),
  include: z.array(z.string().max(256)).nullable().optional(),
  truncation: z.enum(["auto", "disabled"]).nullable().optional(),
  background: z.boolean().nullable().optional(),
  client_metadata: jsonObject.nullable().optional(),
  prompt_cache_options: z.looseObject({}).optional(),
});

type Body = z.infer<typeof responsesSchema>;

/** Known fields set to what the router cannot do: what to call it in the 400. */
const REFUSED: Record<string, (b: Body) => string | false> = {
  truncation: (b) => b.truncation === "auto" && "truncation 'auto' (only 'disabled') is",
  background: (b) => b.background === true && "Background responses are",
  // the router adds no obfuscation: asking for none is honoured
  stream_options: (b) => b.stream_options?.include_obfuscation === true && "Stream obfuscation is",
};

/** A 400 for a field the router cannot honour (conversation, prompt, max_tool_calls…) or does not know. */
function refuseUnsupported(b: Body): void {
  for (const [key, value] of Object.entries(b)) {
    if (value == null) continue;
    const known = Object.hasOwn(responsesSchema.shape, key);
    const what = known ? REFUSED[key]?.(b) : `'${key}' is`;
    if (what) throw refuse(what, key);
  }
}

function contentOf(parts: z.infer<typeof part>[], role: string, at: string): string | OpenAIContentPart[] {
  const out = parts.map((p, j): OpenAIContentPart => {
    if (p.type === "input_text" || p.type === "output_text") return { type: "text", text: p.text };
    if (p.type === "refusal") return { type: "text", text: p.refusal };
    if (p.type === "input_image" && role === "user") return imagePart(p, `${at}[${j}]`);
    const what = p.type === "input_file" ? "File inputs are" : `Images in ${role} messages are`;
    throw refuse(what, `${at}[${j}].type`, "unsupported_content");
  });
  if (out.length === 0) return "";
  return out.length === 1 && out[0].type === "text" ? out[0].text : out;
}

function imagePart(p: z.infer<typeof inputImage>, at: string): OpenAIContentPart {
  if (p.file_id) throw refuse("Images by file_id (send an image_url) are", `${at}.file_id`, "unsupported_content");
  if (!p.image_url) {
    throw badRequest(`Missing required parameter: '${at}.image_url'.`, `${at}.image_url`, "missing_required_parameter");
  }
  // "original" (full resolution) is chat's "high"
  const detail = p.detail === "original" ? "high" : p.detail;
  return { type: "image_url", image_url: { url: p.image_url, ...(detail ? { detail } : {}) } };
}

/**
 * The conversation: instructions first, then the items (a continued
 * response's conversation before the request's own); function calls join
 * the assistant turn before them.
 */
function messagesOf(b: Body, prefix: Item[]): OpenAIMessage[] {
  const messages: OpenAIMessage[] = [];
  if (b.instructions) messages.push({ role: "system", content: b.instructions });
  const calls = new Set<string>();
  // the assistant message the next function_call items join, while nothing else came between
  let turn: OpenAIMessage | null = null;
  for (const [n, item] of [...prefix, ...b.input].entries()) {
    const i = n - prefix.length;
    const at = i < 0 ? `previous_response_id` : `input[${i}]`;
    switch (item.type) {
      case "message": {
        const m = parseAt(ITEMS.message, item, at);
        const role = m.role === "developer" ? "system" : m.role;
        const msg: OpenAIMessage = { role, content: contentOf(m.content, m.role, `${at}.content`) };
        messages.push(msg);
        turn = role === "assistant" ? msg : null;
        break;
      }
      case "function_call": {
        const f = parseAt(ITEMS.function_call, item, at);
        if (calls.has(f.call_id)) {
          throw badRequest(`Function call id '${f.call_id}' is used twice.`, `${at}.call_id`, "invalid_value");
        }
        calls.add(f.call_id);
        if (!turn) messages.push((turn = { role: "assistant", content: null }));
        const call: OpenAIToolCall = {
          id: f.call_id,
          type: "function",
          function: { name: f.name, arguments: f.arguments },
        };
        (turn.tool_calls ??= []).push(call);
        break;
      }
      case "function_call_output": {
        const o = parseAt(ITEMS.function_call_output, item, at);
        if (!calls.has(o.call_id)) {
          throw badRequest(
            `${at} answers function call '${o.call_id}', which no earlier function_call item made.`,
            `${at}.call_id`,
            "invalid_tool_call_id",
          );
        }
        const output = o.output.map((p, j) => {
          if (p.type === "input_text") return p.text;
          throw refuse("Function call outputs other than text are", `${at}.output[${j}].type`, "unsupported_content");
        });
        messages.push({ role: "tool", tool_call_id: o.call_id, content: output.join("") });
        turn = null;
        break;
      }
      case "reasoning":
        parseAt(ITEMS.reasoning, item, at);
        break;
      default:
        throw refuse(`Input items of type '${item.type}' are`, `${at}.type`, "unsupported_item");
    }
  }
  if (messages.length === 0) {
    throw badRequest("Invalid 'input': it must contain at least one message.", "input", "invalid_value");
  }
  return messages;
}

interface ChatTool {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

/** Function tools (a namespace's flattened) for the model; every other type dropped and named. */
function toolsOf(b: Body): { tools: ChatTool[]; dropped: string[] } {
  const tools: ChatTool[] = [];
  const dropped = new Set<string>();
  const names = new Set<string>();
  const add = (raw: unknown, at: string) => {
    const t = parseAt(functionTool, raw, at);
    if (names.has(t.name)) throw badRequest(`Two tools are named '${t.name}'.`, `${at}.name`, "duplicate_tool_name");
    names.add(t.name);
    const fn: ChatTool["function"] = { name: t.name };
    if (t.description != null) fn.description = t.description;
    if (t.parameters != null) fn.parameters = t.parameters;
    if (t.strict != null) fn.strict = t.strict;
    tools.push({ type: "function", function: fn });
  };
  (b.tools ?? []).forEach((t, i) => {
    if (t.type === "function") return add(t, `tools[${i}]`);
    if (t.type !== "namespace") return void dropped.add(t.type);
    parseAt(namespaceTool, t, `tools[${i}]`).tools.forEach((inner, j) => {
      if (inner.type === "function") add(inner, `tools[${i}].tools[${j}]`);
      else dropped.add(inner.type);
    });
  });
  return { tools, dropped: [...dropped] };
}

function toolChoiceOf(b: Body, names: Set<string>, dropped: string[], hosted: boolean): OpenAIToolChoice | undefined {
  const c = b.tool_choice;
  if (c === undefined) return undefined;
  // the provider runs its hosted tools: it judges what forces one
  if (hosted && ((typeof c === "object" && c.type !== "function") || (c === "required" && names.size === 0))) {
    return undefined;
  }
  if (typeof c === "object") {
    // a hosted tool (web_search, file_search…), allowed_tools, mcp, custom: only a function can be forced
    if (c.type !== "function") throw refuse(`tool_choice '${c.type}' is`, "tool_choice");
    const { name } = parseAt(z.looseObject({ name: functionName }), c, "tool_choice");
    if (!names.has(name)) {
      const msg = `tool_choice names the function '${name}', which is not in tools.`;
      throw badRequest(msg, "tool_choice.name", "invalid_value");
    }
    return { type: "function", function: { name } };
  }
  if (c === "required" && names.size === 0) {
    // with only hosted tools, 'required' would force one
    if (dropped.length)
      throw refuse(`tool_choice 'required' with only hosted tools (${dropped.join(", ")}) is`, "tool_choice");
    throw badRequest("tool_choice asks for a tool call, but no tools were given.", "tool_choice", "invalid_value");
  }
  return c;
}

/** Fields sent to the chat path as they are (the chat path's table decides: most are labels). */
const SAME_NAMED = [
  ...["temperature", "top_p", "user", "metadata", "safety_identifier"],
  ...["prompt_cache_key", "prompt_cache_retention", "service_tier"],
] as const;
const ECHOED_IF_GIVEN = [
  ...["user", "top_logprobs", "service_tier", "safety_identifier", "prompt_cache_key"],
  ...["prompt_cache_retention", "include", "client_metadata"],
] as const;

/**
 * Validates a Responses request (a 400 naming the bad field) and translates
 * it for the chat path. `prefix`: the conversation a `previous_response_id`
 * continues (lib/responses/store.ts conversationOf), before the input.
 * `hostedToolsRun`: whether the model's upstream runs hosted tools itself
 * (`openai:`, passed through): then they are neither dropped nor refused.
 */
export function parseResponsesRequest(
  body: unknown,
  prefix: Item[] = [],
  opts: { hostedToolsRun?: (model: string) => boolean } = {},
): ResponsesTranslation {
  const b = parseBody(responsesSchema, body);
  refuseUnsupported(b);
  const chat: Record<string, unknown> = { model: b.model, messages: messagesOf(b, prefix) };
  const hosted = opts.hostedToolsRun?.(b.model) ?? false;
  const { tools, dropped } = toolsOf(b);
  const toolChoice = toolChoiceOf(b, new Set(tools.map((t) => t.function.name)), dropped, hosted);
  // tool_choice and parallel_tool_calls mean nothing (and OpenAI refuses them) without tools
  if (tools.length) {
    chat.tools = tools;
    if (toolChoice !== undefined) chat.tool_choice = toolChoice;
    if (b.parallel_tool_calls != null) chat.parallel_tool_calls = b.parallel_tool_calls;
  }
  const format = b.text?.format;
  if (format?.type === "json_object") chat.response_format = { type: "json_object" };
  if (format?.type === "json_schema") {
    const { name, schema, description, strict } = format;
    const js: Record<string, unknown> = { name, schema };
    if (description !== undefined) js.description = description;
    if (strict != null) js.strict = strict;
    chat.response_format = { type: "json_schema", json_schema: js };
  }
  if (b.text?.verbosity != null) chat.verbosity = b.text.verbosity;
  if (b.max_output_tokens != null) chat.max_completion_tokens = b.max_output_tokens;
  if (b.top_logprobs != null) Object.assign(chat, { logprobs: true, top_logprobs: b.top_logprobs });
  for (const key of SAME_NAMED) if (b[key] != null) chat[key] = b[key];
  if (b.stream) Object.assign(chat, { stream: true, stream_options: { include_usage: true } });

  const echo: Record<string, unknown> = {
    instructions: b.instructions ?? null,
    metadata: b.metadata ?? {},
    tools: b.tools ?? [],
    tool_choice: b.tool_choice ?? "auto",
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    text: { format: { type: "text" }, ...b.text },
    temperature: b.temperature ?? null,
    top_p: b.top_p ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    store: b.store ?? true,
    previous_response_id: b.previous_response_id ?? null,
    reasoning: b.reasoning ?? null,
    truncation: "disabled",
    background: false,
  };
  for (const key of ECHOED_IF_GIVEN) if (b[key] != null) echo[key] = b[key];
  return {
    chat,
    droppedTools: hosted ? [] : dropped,
    echo,
    input: b.input as Item[],
    body: body as Record<string, unknown>,
  };
}
