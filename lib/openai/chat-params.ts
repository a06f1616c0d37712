/**
 * Every request parameter of OpenAI's chat and legacy completions APIs, and
 * what a local node does with it: honours it, ignores it on purpose (it only
 * labels the request), or refuses it with a 400 `unsupported_parameter` when
 * it asks for something the node cannot do. A parameter not in the table is
 * refused too ("Unrecognized request argument", as OpenAI answers). External
 * runtimes get the body as sent and judge it themselves; cloud providers
 * translate or refuse (lib/providers/params.ts). docs/api.md shows the table.
 */
import { badRequest } from "./errors";

export type NodeSupport = "honoured" | "ignored" | "refused";

interface Param {
  node: NodeSupport;
  /** For a refused parameter: the values that ask for nothing (it is refused only when set to another). */
  isDefault?: (v: unknown) => boolean;
  note?: string;
}

/** Values that ask for nothing, for a refused parameter's `isDefault` (null and absent always do). */
export const DEFAULTS = {
  falsy: (v: unknown) => v === false,
  zero: (v: unknown) => v === 0,
  one: (v: unknown) => v === 1,
  empty: (v: unknown) =>
    Array.isArray(v) ? v.length === 0 : typeof v === "object" && v !== null && Object.keys(v).length === 0,
  textOnly: (v: unknown) => Array.isArray(v) && v.length === 1 && v[0] === "text",
};
const { falsy, zero, one, empty, textOnly } = DEFAULTS;

const honoured: Param = { node: "honoured" };
const ignored = (note: string): Param => ({ node: "ignored", note });
const refused = (note: string, isDefault?: Param["isDefault"]): Param => ({ node: "refused", note, isDefault });

/** OpenAI's chat completion parameters (openai-node's ChatCompletionCreateParams). */
export const CHAT_PARAMS: Readonly<Record<string, Param>> = {
  model: honoured,
  messages: honoured,
  max_tokens: honoured,
  max_completion_tokens: honoured,
  temperature: honoured,
  top_p: honoured,
  stop: honoured,
  seed: honoured,
  frequency_penalty: honoured,
  presence_penalty: honoured,
  stream: honoured,
  stream_options: honoured,
  tools: honoured,
  tool_choice: honoured,
  parallel_tool_calls: honoured,
  response_format: honoured,
  n: { node: "honoured", note: "n generations at once, up to the node's parallel slots (LLM_NODE_PARALLEL)" },
  modalities: refused('text only: ["text"]', textOnly),
  logprobs: refused("node-llama-cpp does not expose token probabilities", falsy),
  top_logprobs: refused("node-llama-cpp does not expose token probabilities", zero),
  logit_bias: { node: "honoured", note: "ids of the model's own vocabulary; -100 bans a token" },
  audio: refused("no audio output"),
  prediction: refused("no predicted outputs"),
  web_search_options: refused("no web search"),
  reasoning_effort: refused("local models take no reasoning effort"),
  verbosity: refused("local models take no verbosity", (v) => v === "medium"),
  functions: refused("the deprecated functions API: send tools", empty),
  function_call: refused("the deprecated functions API: send tool_choice"),
  user: ignored("recorded in history; it does not change the answer"),
  metadata: ignored("labels for OpenAI's stored completions"),
  store: ignored("the router keeps its own history"),
  service_tier: ignored("OpenAI's processing tier"),
  prompt_cache_key: {
    node: "honoured",
    note: "turns sharing it go to the node (affinity strategy) and sequence holding their cache",
  },
  prompt_cache_retention: ignored("nodes cache prompts by conversation anyway"),
  safety_identifier: ignored("an end-user id for OpenAI's abuse checks"),
};

/** OpenAI's legacy completion parameters. */
export const COMPLETION_PARAMS: Readonly<Record<string, Param>> = {
  model: honoured,
  prompt: honoured,
  max_tokens: honoured,
  temperature: honoured,
  top_p: honoured,
  stop: honoured,
  seed: honoured,
  frequency_penalty: honoured,
  presence_penalty: honoured,
  stream: honoured,
  stream_options: honoured,
  n: refused("one answer per request on a local node", one),
  best_of: refused("one answer per request on a local node", one),
  echo: refused("the prompt is not echoed", falsy),
  logprobs: refused("node-llama-cpp does not expose token probabilities", zero),
  logit_bias: { node: "honoured", note: "ids of the model's own vocabulary; -100 bans a token" },
  suffix: refused("no insertion: the model only continues the prompt", (v) => v === ""),
  user: ignored("recorded in history; it does not change the answer"),
};

/** A 400 for a parameter OpenAI's chat API does not have (as OpenAI answers it); for nodes and clouds. */
export function refuseUnrecognized(
  body: Record<string, unknown>,
  table: Readonly<Record<string, Param>> = CHAT_PARAMS,
) {
  for (const key of Object.keys(body)) {
    if (body[key] !== undefined && body[key] !== null && !Object.hasOwn(table, key)) {
      throw badRequest(`Unrecognized request argument supplied: ${key}`, key, "unsupported_parameter");
    }
  }
}

/**
 * Throws a 400 for the first parameter of `body` a local node would not
 * honour: unknown to OpenAI's API, or set to something the node cannot do.
 */
export function refuseOnNode(body: Record<string, unknown>, op: "chat" | "completion"): void {
  const table = op === "chat" ? CHAT_PARAMS : COMPLETION_PARAMS;
  refuseUnrecognized(body, table);
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined || value === null) continue;
    const p = table[key];
    if (p.node === "refused" && !p.isDefault?.(value)) {
      throw badRequest(`'${key}' is not supported by local models (${p.note}).`, key, "unsupported_parameter");
    }
  }
}
