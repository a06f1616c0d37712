/** OpenAI request bodies into the jobs an inference node runs. */
import { randomUUID } from "node:crypto";
import type { ChatJob, ChatMessage, CompletionJob, EmbeddingJob } from "../inference/types";
import { badRequest } from "./errors";
import { contentText, stopList, type ChatBody, type CompletionBody, type EmbeddingBody } from "./schemas";

export function newId(prefix: "chatcmpl" | "cmpl"): string {
  return `${prefix}-${randomUUID().replace(/-/g, "")}`;
}

const ROLE: Record<string, ChatMessage["role"]> = {
  system: "system",
  developer: "system",
  user: "user",
  tool: "user",
  assistant: "assistant",
};

function sampling(body: ChatBody | CompletionBody) {
  return {
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    stop: stopList(body.stop),
    seed: body.seed ?? undefined,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    user: body.user,
    created: Math.floor(Date.now() / 1000),
  };
}

export function chatJob(body: ChatBody): ChatJob {
  const messages = body.messages.map((m, i): ChatMessage => {
    if (Array.isArray(m.content)) {
      const j = m.content.findIndex((p) => p.type !== "text");
      if (j >= 0) {
        throw badRequest(
          `Content parts of type '${m.content[j].type}' are not supported by local models; send text.`,
          `messages[${i}].content[${j}].type`,
          "unsupported_content",
        );
      }
    }
    return { role: ROLE[m.role], content: contentText(m.content) };
  });
  return {
    requestId: newId("chatcmpl"),
    model: body.model,
    messages,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    ...sampling(body),
  };
}

export function completionJob(body: CompletionBody): CompletionJob {
  return {
    requestId: newId("cmpl"),
    model: body.model,
    prompt: Array.isArray(body.prompt) ? body.prompt[0] : body.prompt,
    // OpenAI's legacy completions default to 16 tokens
    maxTokens: body.max_tokens ?? 16,
    ...sampling(body),
  };
}

export function embeddingJob(body: EmbeddingBody): EmbeddingJob {
  return { model: body.model, input: Array.isArray(body.input) ? body.input : [body.input] };
}
