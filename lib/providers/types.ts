/**
 * Cloud providers behind the OpenAI endpoint. One declarative module per
 * cloud (`openai.ts`, `google.ts`, `anthropic.ts`) says how to reach it and how
 * to translate; `lib/providers/index.ts` and the `cloud` service drive them.
 * The client always sees OpenAI's chat format, streamed or not.
 *
 * Shapes here are the OpenAI wire JSON (snake_case), with the parts the
 * translators need: tools, tool calls and image parts included.
 */

import { CHAT_PARAMS, DEFAULTS, refuseUnrecognized } from "../openai/chat-params";
import { badRequest } from "../openai/errors";

export interface OpenAIToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export type OpenAIContentPart =
  { type: "text"; text: string } | { type: "image_url"; image_url: { url: string; detail?: string } };

export interface OpenAIMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content?: string | OpenAIContentPart[] | null;
  name?: string;
  tool_calls?: OpenAIToolCall[];
  /** role "tool": which call this answers. */
  tool_call_id?: string;
}

export interface OpenAITool {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export type OpenAIToolChoice = "none" | "auto" | "required" | { type: "function"; function: { name: string } };

export type OpenAIResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | {
      type: "json_schema";
      json_schema: { name: string; description?: string; schema?: Record<string, unknown>; strict?: boolean | null };
    };

/**
 * An OpenAI chat request as the router received it (already validated), `model` without its prefix.
 * Every parameter of OpenAI's chat API may be present: each provider module translates it, ignores it
 * (it only labels the request) or refuses it (its REFUSED table; `cloudParamSupport()` in params.ts).
 */
export interface OpenAIChatRequest {
  model: string;
  messages: OpenAIMessage[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  tools?: OpenAITool[] | null;
  tool_choice?: OpenAIToolChoice | null;
  parallel_tool_calls?: boolean | null;
  response_format?: OpenAIResponseFormat | null;
  user?: string;
  seed?: number | null;
  n?: number | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  logit_bias?: Record<string, number> | null;
  reasoning_effort?: string | null;
  verbosity?: string | null;
  modalities?: string[] | null;
  audio?: unknown;
  prediction?: unknown;
  web_search_options?: unknown;
  functions?: unknown[] | null;
  function_call?: unknown;
  metadata?: Record<string, string> | null;
  store?: boolean | null;
  service_tier?: string | null;
  prompt_cache_key?: string | null;
  safety_identifier?: string | null;
}

/** One token's log probability, as OpenAI's `choices[].logprobs.content[]` has it. */
export interface OpenAITokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] | null }>;
}

/** A choice's `logprobs` when the client asked for them (`logprobs: true`). */
export interface OpenAIChoiceLogprobs {
  content: OpenAITokenLogprob[] | null;
  refusal: null;
}

export type OpenAIFinishReason = "stop" | "length" | "tool_calls" | "content_filter";

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface OpenAIChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: "assistant"; content: string | null; tool_calls?: OpenAIToolCall[] };
    logprobs: OpenAIChoiceLogprobs | null;
    finish_reason: OpenAIFinishReason;
  }>;
  usage: OpenAIUsage;
}

export interface OpenAIChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: {
      role?: "assistant";
      content?: string | null;
      /** Streamed tool calls: the first fragment of a call has id, type and name; later ones add arguments. */
      tool_calls?: Array<{
        index: number;
        id?: string;
        type?: "function";
        function?: { name?: string; arguments?: string };
      }>;
    };
    logprobs: OpenAIChoiceLogprobs | null;
    finish_reason: OpenAIFinishReason | null;
  }>;
  usage?: OpenAIUsage | null;
}

/** What the router's answer is stamped with (id, the model name the client sent, created). */
export interface ResponseMeta {
  id: string;
  /** The model as the client named it, prefix included (e.g. `google:gemini-2.0-flash`). */
  model: string;
  created: number;
}

/** One upstream HTTP request. */
export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

/** One server-sent event from the upstream (`event:` may be absent). */
export interface SseEvent {
  event?: string;
  data: string;
}

/** Turns a provider's SSE stream into OpenAI chunks; stateful, one per request. */
export interface StreamTranslator {
  /** Chunks for one upstream event (often none). Throws a ProviderError for an error event. */
  push(ev: SseEvent): OpenAIChunk[];
  /** Chunks owed at the end of the stream (e.g. a last finish_reason or usage chunk). */
  end(): OpenAIChunk[];
}

export interface ProviderConfig {
  apiKey: string;
  baseUrl: string;
}

export interface Provider {
  /**
   * `openai`, `google`, `anthropic`: also its key in cloudConfig() (lib/config), which holds its key,
   * base URL and the models /v1/models lists (`<NAME>_API_KEY`, … in lib/config/spec.ts).
   */
  name: string;
  /** The upstream request for an OpenAI chat request (`req.model` has no prefix). */
  request(req: OpenAIChatRequest, cfg: ProviderConfig): UpstreamRequest;
  /**
   * A non-streamed upstream answer (parsed JSON) as an OpenAI chat completion. `req`: the request it
   * answers, as given to request(): what the client asked shapes the answer (Anthropic's JSON
   * `response_format` comes back as content, Google's `parallel_tool_calls: false` keeps one call).
   */
  response(body: unknown, meta: ResponseMeta, req?: OpenAIChatRequest): OpenAIChatCompletion;
  /** A translator for the upstream's SSE stream; `req` as for response(). */
  stream(meta: ResponseMeta, req?: OpenAIChatRequest): StreamTranslator;
  /** The message of an upstream error answer (parsed JSON or text). */
  errorMessage(status: number, body: unknown): string;
  /** Seconds to wait before retrying, when the error body says it (without a Retry-After header). */
  retryAfter?(status: number, body: unknown): number | null;
}

/** An error the upstream reported, with its HTTP status (a stream error event uses 502 unless it says more). */
export class ProviderError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly provider: string,
  ) {
    super(message);
  }
}

/** What a provider does with one of OpenAI's chat parameters. */
export type ParamSupport = "translated" | "ignored" | "refused";

/** OpenAI's chat completion parameters that each provider's table (cloudParamSupport()) covers: lib/openai/chat-params.ts. */
export const OPENAI_CHAT_PARAMS = Object.keys(CHAT_PARAMS);

export type OpenAIChatParam = string;

/** Why a provider refuses a parameter, and the values that ask for nothing (null and absent always do). */
export interface Refusal {
  why: string;
  isDefault?: (v: unknown) => boolean;
}

/** Values that ask for nothing, for Refusal.isDefault. */
export { DEFAULTS } from "../openai/chat-params";

/** What every translating provider refuses alike: the deprecated functions API, and any verbosity but OpenAI's default. */
export const COMMON_REFUSALS: Readonly<Record<string, Refusal>> = {
  verbosity: { why: "the model takes no verbosity", isDefault: (v) => v === "medium" },
  functions: { why: "the deprecated functions API: send tools", isDefault: DEFAULTS.empty },
  function_call: {
    why: "the deprecated functions API: send tool_choice",
    isDefault: (v) => v === "none" || v === "auto",
  },
};

/**
 * Throws a 400 `unsupported_parameter` naming the first parameter of `req` that `refused` lists and that
 * is set to something other than its default: the provider cannot do what it asks, and dropping it
 * silently would answer another question than the one asked.
 */
export function refuseParams(req: OpenAIChatRequest, provider: string, refused: Readonly<Record<string, Refusal>>) {
  refuseUnrecognized(req as unknown as Record<string, unknown>);
  for (const [param, r] of Object.entries(refused)) {
    const value: unknown = (req as unknown as Record<string, unknown>)[param];
    if (value === undefined || value === null || r.isDefault?.(value)) continue;
    throw badRequest(`'${param}' is not supported by ${provider} models (${r.why}).`, param, "unsupported_parameter");
  }
}
