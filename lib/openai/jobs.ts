/** OpenAI request bodies into the jobs an inference node runs. */
import { randomUUID } from "node:crypto";
import type {
  ChatJob,
  ChatMessage,
  CompletionJob,
  EmbeddingJob,
  RerankJob,
  ResponseFormat,
  ToolChoice,
  ToolSpec,
} from "../inference/types";
import { badRequest } from "./errors";
import {
  contentText,
  stopList,
  type ChatBody,
  type CompletionBody,
  type EmbeddingBody,
  type RerankBody,
} from "./schemas";

export function newId(prefix: "chatcmpl" | "cmpl"): string {
  return `${prefix}-${randomUUID().replace(/-/g, "")}`;
}

function sampling(body: ChatBody | CompletionBody) {
  return {
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    stop: stopList(body.stop),
    seed: body.seed ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    logitBias: body.logit_bias && Object.keys(body.logit_bias).length ? body.logit_bias : undefined,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    user: body.user,
    cacheKey: typeof body.prompt_cache_key === "string" && body.prompt_cache_key ? body.prompt_cache_key : undefined,
    created: Math.floor(Date.now() / 1000),
  };
}

type BodyMessage = ChatBody["messages"][number];

/**
 * The conversation as a node runs it: text content (images are judged where
 * the request is served: lib/upstreams/local-support.ts), an assistant's tool
 * calls, and each tool answer tied to a call made before it.
 */
function messagesOf(body: ChatBody): ChatMessage[] {
  const calls = new Set<string>();
  // calls of the last assistant turn not answered yet: a tool message must answer each before the conversation goes on
  let pending = new Set<string>();
  const out = body.messages.map((m: BodyMessage, i): ChatMessage => {
    if (m.role !== "tool" && pending.size > 0) throw unanswered(pending, i);
    const text = contentText(m.content);
    switch (m.role) {
      case "system":
      case "developer":
        return { role: "system", content: text };
      case "user":
        return { role: "user", content: text };
      case "assistant": {
        const toolCalls = (m.tool_calls ?? []).map((c, j) => {
          if (calls.has(c.id)) {
            throw badRequest(
              `Tool call id '${c.id}' is used twice.`,
              `messages[${i}].tool_calls[${j}].id`,
              "invalid_value",
            );
          }
          calls.add(c.id);
          return { id: c.id, name: c.function.name, arguments: c.function.arguments };
        });
        pending = new Set(toolCalls.map((c) => c.id));
        return toolCalls.length
          ? { role: "assistant", content: text, toolCalls }
          : { role: "assistant", content: text };
      }
      case "tool": {
        const id = m.tool_call_id ?? "";
        if (!pending.delete(id)) {
          throw badRequest(
            calls.has(id)
              ? `messages[${i}] answers tool call '${id}' a second time.`
              : `messages[${i}] answers tool call '${id}', which no earlier assistant message made.`,
            `messages[${i}].tool_call_id`,
            "invalid_tool_call_id",
          );
        }
        return { role: "tool", content: text, toolCallId: id };
      }
    }
  });
  if (pending.size > 0) throw unanswered(pending, body.messages.length);
  return out;
}

function unanswered(pending: Set<string>, i: number) {
  return badRequest(
    `An assistant message with tool_calls must be followed by a tool message for each call; not answered: ${[...pending].join(", ")}.`,
    `messages[${i - 1}]`,
    "invalid_tool_call_id",
  );
}

/** The functions, the choice among them and the answer's format, checked against each other. */
function toolsOf(body: ChatBody): Pick<ChatJob, "tools" | "toolChoice" | "parallelToolCalls" | "responseFormat"> {
  const tools: ToolSpec[] = (body.tools ?? []).map((t) => ({
    name: t.function.name,
    description: t.function.description,
    parameters: t.function.parameters,
  }));
  const names = new Set<string>();
  tools.forEach((t, i) => {
    if (names.has(t.name)) {
      throw badRequest(`Two tools are named '${t.name}'.`, `tools[${i}].function.name`, "duplicate_tool_name");
    }
    names.add(t.name);
  });
  const choice = body.tool_choice ?? undefined;
  let toolChoice: ToolChoice | undefined;
  if (typeof choice === "object") {
    if (!names.has(choice.function.name)) {
      throw badRequest(
        `tool_choice names the function '${choice.function.name}', which is not in tools.`,
        "tool_choice.function.name",
        "invalid_value",
      );
    }
    toolChoice = { name: choice.function.name };
  } else {
    toolChoice = choice;
  }
  if (toolChoice !== undefined && toolChoice !== "none" && toolChoice !== "auto" && tools.length === 0) {
    throw badRequest("tool_choice asks for a tool call, but no tools were given.", "tool_choice", "invalid_value");
  }
  const rf = body.response_format ?? undefined;
  let responseFormat: ResponseFormat | undefined;
  if (rf?.type === "json_object") responseFormat = { type: "json_object" };
  else if (rf?.type === "json_schema") {
    const js = (rf as { json_schema: { name: string; schema?: Record<string, unknown> } }).json_schema;
    responseFormat = js.schema ? { type: "json_schema", name: js.name, schema: js.schema } : { type: "json_object" };
  }
  return {
    tools: tools.length ? tools : undefined,
    toolChoice: tools.length ? toolChoice : undefined,
    parallelToolCalls: body.parallel_tool_calls ?? undefined,
    responseFormat,
  };
}

export function chatJob(body: ChatBody): ChatJob {
  return {
    requestId: newId("chatcmpl"),
    model: body.model,
    messages: messagesOf(body),
    ...toolsOf(body),
    n: body.n != null && body.n > 1 ? body.n : undefined,
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

export function rerankJob(body: RerankBody): RerankJob {
  return {
    model: body.model,
    query: body.query,
    documents: body.documents.map((d) => (typeof d === "string" ? d : d.text)),
  };
}

export function embeddingJob(body: EmbeddingBody): EmbeddingJob {
  return { model: body.model, input: Array.isArray(body.input) ? body.input : [body.input] };
}
