/**
 * Anthropic: what each OpenAI chat parameter that is not a message, a tool or
 * plain sampling becomes. REFUSED ones are a 400, IGNORED ones only label the
 * request; a JSON `response_format` goes the way Anthropic documents JSON
 * output (one tool whose input_schema is the schema, forced with tool_choice,
 * its input read back as the message content), and `parallel_tool_calls:
 * false` becomes disable_parallel_tool_use. Kept apart from anthropic.ts
 * (messages, tools, answers, streams) so that the parameter tables
 * lib/providers/params.ts puts together sit with their translation. Formats:
 * docs.anthropic.com/en/docs/build-with-claude/tool-use (JSON mode, parallel tool use).
 */
import { badRequest } from "../openai/errors";
import type { OpenAIChatRequest, Refusal } from "./types";
import { COMMON_REFUSALS, DEFAULTS } from "./types";

/** The forced tool's name for `response_format: {type: "json_object"}` (json_schema uses its own name). */
export const JSON_OBJECT_TOOL = "json_object";

/** OpenAI chat parameters Anthropic cannot honour: a 400 when one is set to anything but its default. */
export const REFUSED: Readonly<Record<string, Refusal>> = {
  n: { why: "one answer per request", isDefault: DEFAULTS.one },
  frequency_penalty: { why: "Anthropic takes no frequency penalty", isDefault: DEFAULTS.zero },
  presence_penalty: { why: "Anthropic takes no presence penalty", isDefault: DEFAULTS.zero },
  logprobs: { why: "Anthropic does not return token probabilities", isDefault: DEFAULTS.falsy },
  top_logprobs: { why: "Anthropic does not return token probabilities", isDefault: DEFAULTS.zero },
  logit_bias: { why: "Anthropic takes no token biases", isDefault: DEFAULTS.empty },
  seed: { why: "Anthropic takes no seed; its answers cannot be made repeatable" },
  audio: { why: "no audio output" },
  modalities: { why: 'text only: ["text"]', isDefault: DEFAULTS.textOnly },
  prediction: { why: "Anthropic has no predicted outputs" },
  web_search_options: { why: "Anthropic's web search tool is not offered through this endpoint" },
  reasoning_effort: { why: "extended thinking is not mapped" },
  ...COMMON_REFUSALS,
};
export const UNSUPPORTED: readonly string[] = Object.keys(REFUSED);

/** OpenAI chat parameters that only label the request: not sent to Anthropic, and nothing is lost. */
export const IGNORED: readonly string[] = [
  "metadata",
  "store",
  "service_tier",
  "prompt_cache_key",
  "prompt_cache_retention",
];

/** The tool a JSON response_format becomes; undefined for text (or none). */
function jsonTool(rf: OpenAIChatRequest["response_format"]): Record<string, unknown> | undefined {
  if (rf?.type === "json_object") {
    return { name: JSON_OBJECT_TOOL, description: "Answer with a JSON object.", input_schema: { type: "object" } };
  }
  if (rf?.type !== "json_schema") return undefined;
  const { name, description, schema } = rf.json_schema;
  return { name, ...(description ? { description } : {}), input_schema: schema ?? { type: "object" } };
}

/**
 * A JSON response_format as the request's `tools` and `tool_choice`: its forced tool, one call
 * only; undefined for text (or none). With tools of the client's too it is a 400.
 */
export function forcedJsonTool(
  req: OpenAIChatRequest,
): { tools: Array<Record<string, unknown>>; tool_choice: Record<string, unknown> } | undefined {
  const json = jsonTool(req.response_format);
  if (!json) return undefined;
  if (req.tools?.length) {
    throw badRequest(
      "Anthropic models cannot combine 'response_format' with 'tools' here: the JSON answer is itself sent as a forced tool call. Send one or the other.",
      "response_format",
      "unsupported_parameter",
    );
  }
  return { tools: [json], tool_choice: { type: "tool", name: json.name, disable_parallel_tool_use: true } };
}

/** The request asked for JSON (response_format json_object or json_schema): the forced tool's input is the answer. */
export const wantsJson = (req: OpenAIChatRequest | undefined) =>
  req?.response_format?.type === "json_object" || req?.response_format?.type === "json_schema";

/** The JSON answer as the message content: the forced tool's input; without a tool_use (a refusal, say) the text. */
export function jsonContent(blocks: Array<{ type: string; input?: unknown }>, text: string): string {
  const use = blocks.find((b) => b.type === "tool_use");
  return use ? JSON.stringify(use.input ?? {}) : text;
}

/**
 * The tool_choice to send with `parallel_tool_calls`: when false, at most one tool_use per answer
 * (disable_parallel_tool_use, on "auto" when the client chose none); otherwise `choice` as it is.
 */
export function parallelToolChoice(
  choice: Record<string, unknown> | undefined,
  parallel: boolean | null | undefined,
): Record<string, unknown> | undefined {
  if (parallel !== false) return choice;
  // "none" takes no such flag: it calls none anyway
  const c = choice ?? { type: "auto" };
  if (c.type !== "none") c.disable_parallel_tool_use = true;
  return c;
}
