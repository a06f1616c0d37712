/**
 * Cloud providers behind the OpenAI endpoint. One declarative module per
 * cloud (`openai.ts`, `google.ts`, `anthropic.ts`) says how to reach it and how
 * to translate; `lib/providers/index.ts` and the `cloud` service drive them.
 * The client always sees OpenAI's chat format, streamed or not.
 *
 * Shapes here are the OpenAI wire JSON (snake_case), with the parts the
 * translators need: tools, tool calls and image parts included.
 */

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

/** An OpenAI chat request as the router received it (already validated), `model` without its prefix. */
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
  tools?: OpenAITool[];
  tool_choice?: OpenAIToolChoice;
  user?: string;
  seed?: number | null;
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
    logprobs: null;
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
    logprobs: null;
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
  /** A non-streamed upstream answer (parsed JSON) as an OpenAI chat completion. */
  response(body: unknown, meta: ResponseMeta): OpenAIChatCompletion;
  /** A translator for the upstream's SSE stream. */
  stream(meta: ResponseMeta): StreamTranslator;
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
