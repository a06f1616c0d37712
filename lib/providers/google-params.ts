/**
 * Google Gemini: what each OpenAI chat parameter that is not a message or a
 * tool becomes. REFUSED ones are a 400, IGNORED ones only label the request;
 * the others go into `generationConfig` (sampling, response_format as
 * Gemini's JSON mode, n as candidateCount, penalties, logprobs), and Gemini's
 * logprobsResult comes back as OpenAI's choice `logprobs`. Kept apart from
 * google.ts (messages, tools, answers, streams) so that the parameter tables
 * lib/providers/params.ts puts together sit with their translation.
 * Formats: ai.google.dev/api/generate-content#generationconfig,
 * ai.google.dev/gemini-api/docs/structured-output, ai.google.dev/gemini-api/docs/logprobs.
 */
import { badRequest } from "../openai/errors";
import type { OpenAIChatRequest, OpenAIChoiceLogprobs, Refusal } from "./types";
import { COMMON_REFUSALS, DEFAULTS } from "./types";

/** OpenAI chat parameters Gemini cannot honour: a 400 when one is set to anything but its default. */
export const REFUSED: Readonly<Record<string, Refusal>> = {
  logit_bias: { why: "Gemini takes no token biases", isDefault: DEFAULTS.empty },
  audio: { why: "no audio output through this endpoint" },
  modalities: { why: 'text only: ["text"]', isDefault: DEFAULTS.textOnly },
  prediction: { why: "Gemini has no predicted outputs" },
  web_search_options: { why: "Google Search grounding is not offered through this endpoint" },
  reasoning_effort: { why: "Gemini's thinking budget or level differs per model and is not mapped" },
  ...COMMON_REFUSALS,
};
export const UNSUPPORTED: readonly string[] = Object.keys(REFUSED);

/** OpenAI chat parameters that only label the request: not sent to Gemini, and nothing is lost. */
export const IGNORED: readonly string[] = [
  "user",
  "metadata",
  "store",
  "service_tier",
  "prompt_cache_key",
  "prompt_cache_retention",
  "safety_identifier",
];

interface GeminiLogprob {
  token?: string;
  logProbability?: number;
}

/** A candidate's `logprobsResult` (with responseLogprobs). */
export interface GeminiLogprobsResult {
  topCandidates?: Array<{ candidates?: GeminiLogprob[] }>;
  chosenCandidates?: GeminiLogprob[];
}

/** The response_format as generationConfig fields: Gemini's JSON mode, with the schema when there is one. */
function responseFormat(rf: OpenAIChatRequest["response_format"]): Record<string, unknown> {
  if (rf?.type === "json_object") return { responseMimeType: "application/json" };
  if (rf?.type !== "json_schema") return {};
  const { schema, description } = rf.json_schema;
  if (!schema) return { responseMimeType: "application/json" };
  // the format's description tells the model what the JSON is for: Gemini reads it from the schema
  const described = description && schema.description === undefined ? { ...schema, description } : schema;
  // responseJsonSchema takes standard JSON Schema (responseSchema takes Google's OpenAPI subset)
  return { responseMimeType: "application/json", responseJsonSchema: described };
}

/** OpenAI's logprobs and top_logprobs as Gemini's responseLogprobs and logprobs. */
function logprobsConfig(req: OpenAIChatRequest): Record<string, unknown> {
  if (req.logprobs !== true) {
    if (req.top_logprobs) {
      throw badRequest("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs", "invalid_value");
    }
    return {};
  }
  return { responseLogprobs: true, ...(req.top_logprobs ? { logprobs: req.top_logprobs } : {}) };
}

function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined && v !== null && !(Array.isArray(v) && !v.length)),
  );
}

/** The request's `generationConfig`: only the fields the client set (empty when none is). */
export function generationConfig(req: OpenAIChatRequest): Record<string, unknown> {
  return compact({
    maxOutputTokens: req.max_completion_tokens ?? req.max_tokens,
    temperature: req.temperature,
    topP: req.top_p,
    stopSequences: typeof req.stop === "string" ? [req.stop] : req.stop,
    seed: req.seed,
    // the defaults (n 1, penalties 0) are not sent: some Gemini models refuse the fields altogether
    candidateCount: req.n != null && req.n > 1 ? req.n : undefined,
    presencePenalty: req.presence_penalty || undefined,
    frequencyPenalty: req.frequency_penalty || undefined,
    ...logprobsConfig(req),
    ...responseFormat(req.response_format),
  });
}

/**
 * Gemini has no switch for parallel function calls: with `parallel_tool_calls: false` only the
 * first function call of each answer (each candidate) is returned, the others left out.
 */
export const oneCallOnly = (req: OpenAIChatRequest | undefined) => req?.parallel_tool_calls === false;

/** A token's log probability as OpenAI writes it (bytes: its UTF-8). */
function tokenLogprob(c: GeminiLogprob) {
  const token = c.token ?? "";
  return { token, logprob: c.logProbability ?? 0, bytes: [...Buffer.from(token, "utf8")] };
}

/** Gemini's logprobsResult (responseLogprobs) as OpenAI's choice `logprobs`; null when there is none. */
export function toLogprobs(r: GeminiLogprobsResult | undefined): OpenAIChoiceLogprobs | null {
  if (!r?.chosenCandidates) return null;
  const content = r.chosenCandidates.map((chosen, i) => ({
    ...tokenLogprob(chosen),
    top_logprobs: (r.topCandidates?.[i]?.candidates ?? []).map(tokenLogprob),
  }));
  return { content, refusal: null };
}
