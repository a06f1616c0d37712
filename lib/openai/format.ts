/** Builders for OpenAI response objects, shared by inference nodes and the api. */
import type { FinishReason, GenerationResult, ToolCall } from "../inference/types";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(r: Pick<GenerationResult, "promptTokens" | "completionTokens">): Usage {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
  };
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: "assistant"; content: string | null; tool_calls?: OpenAIToolCall[] };
    logprobs: null;
    finish_reason: FinishReason;
  }>;
  usage: Usage;
}

export interface OpenAIToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A streamed piece of a tool call: the first of an index has its id, type and name. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

export function toolCalls(calls: ToolCall[]): OpenAIToolCall[] {
  return calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
}

export interface ChatChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: "assistant"; content?: string | null; tool_calls?: ToolCallDelta[] };
    logprobs: null;
    finish_reason: FinishReason | null;
  }>;
  usage?: Usage | null;
}

export interface TextCompletion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: Array<{ index: number; text: string; logprobs: null; finish_reason: FinishReason | null }>;
  usage?: Usage | null;
}

export interface Meta {
  id: string;
  model: string;
  created: number;
}

/** One choice per generation (`n`); the prompt is counted once, the completions of all. */
export function chatCompletion(meta: Meta, results: GenerationResult[]): ChatCompletion {
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    choices: results.map((r, index) => ({
      index,
      // with tool calls and nothing said, content is null (as OpenAI sends it)
      message: r.toolCalls?.length
        ? { role: "assistant", content: r.text || null, tool_calls: toolCalls(r.toolCalls) }
        : { role: "assistant", content: r.text },
      logprobs: null,
      finish_reason: r.finishReason,
    })),
    usage: usageOf(results),
  };
}

function usageOf(results: GenerationResult[]): Usage {
  return usage({
    promptTokens: results[0].promptTokens,
    completionTokens: results.reduce((sum, r) => sum + r.completionTokens, 0),
  });
}

export function chatChunk(
  meta: Meta,
  delta: ChatChunk["choices"][number]["delta"],
  finish: FinishReason | null = null,
  index = 0,
): ChatChunk {
  return {
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    choices: [{ index, delta, logprobs: null, finish_reason: finish }],
  };
}

/** The extra last chunk of `stream_options.include_usage`: no choices, just usage. */
export function chatUsageChunk(meta: Meta, results: GenerationResult[]): ChatChunk {
  return {
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    choices: [],
    usage: usageOf(results),
  };
}

export function textCompletion(meta: Meta, r: GenerationResult): TextCompletion {
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text: r.text, logprobs: null, finish_reason: r.finishReason }],
    usage: usage(r),
  };
}

export function textChunk(meta: Meta, text: string, finish: FinishReason | null = null): TextCompletion {
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
  };
}

export function textUsageChunk(meta: Meta, r: GenerationResult): TextCompletion {
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [],
    usage: usage(r),
  };
}

export function embeddingList(model: string, vectors: number[][], promptTokens: number) {
  return {
    object: "list" as const,
    data: vectors.map((embedding, index) => ({ object: "embedding" as const, index, embedding })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

/** Base64 of little-endian float32s, as OpenAI's `encoding_format: "base64"` returns. */
export function embeddingToBase64(v: number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString("base64");
}
