/** The OpenAI chat completion a translated answer becomes (shared by the provider modules). */
import type { OpenAIChatCompletion, OpenAIFinishReason, OpenAIToolCall, OpenAIUsage, ResponseMeta } from "./types";

export function chatCompletion(
  meta: ResponseMeta,
  text: string,
  calls: OpenAIToolCall[],
  finishReason: OpenAIFinishReason,
  usage: OpenAIUsage,
): OpenAIChatCompletion {
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          // a tool-call-only answer has null content, as OpenAI sends it
          content: calls.length && !text ? null : text,
          ...(calls.length ? { tool_calls: calls } : {}),
        },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
    usage,
  };
}
