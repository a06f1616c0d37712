/**
 * Anthropic's Messages API in front (`POST /v1/messages`), for any model: a
 * Messages request becomes an OpenAI chat request, and the OpenAI answer (a
 * completion, or chunks) goes back as a Message or as Anthropic's stream
 * events, so the official `@anthropic-ai/sdk` works against local models too.
 * Formats: docs.anthropic.com/en/api/messages, /en/api/messages-streaming,
 * /en/api/errors.
 */
import { z } from "zod";
import { badRequest } from "../openai/errors";
import { parseBody } from "../openai/schemas";
import type {
  OpenAIChatCompletion,
  OpenAIChatRequest,
  OpenAIChunk,
  OpenAIContentPart,
  OpenAIFinishReason,
  OpenAIMessage,
  OpenAIToolCall,
  OpenAIToolChoice,
} from "./types";

const BLOCKS_ERROR = { error: "must be a string or an array of content blocks" };
/** A string, or an array of blocks: parsed as blocks (a string is one text block). */
const blocksOf = <T extends z.ZodType>(block: T) =>
  z.preprocess((v) => (typeof v === "string" ? [{ type: "text", text: v }] : v), z.array(block, BLOCKS_ERROR));

const textBlock = z.looseObject({ type: z.literal("text"), text: z.string() });
const imageBlock = z.looseObject({
  type: z.literal("image"),
  source: z.discriminatedUnion("type", [
    z.looseObject({ type: z.literal("base64"), media_type: z.string(), data: z.string() }),
    z.looseObject({ type: z.literal("url"), url: z.string() }),
  ]),
});
const toolUseBlock = z.looseObject({
  type: z.literal("tool_use"),
  id: z.string(),
  name: z.string(),
  input: z.record(z.string(), z.unknown()).optional(),
});
const toolResultBlock = z.looseObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string(),
  content: blocksOf(z.discriminatedUnion("type", [textBlock, imageBlock])).optional(),
  is_error: z.boolean().optional(),
});
/** Thinking blocks that clients send back in assistant turns: accepted, left out. */
const thinking = [
  z.looseObject({ type: z.literal("thinking") }),
  z.looseObject({ type: z.literal("redacted_thinking") }),
];
const block = z.discriminatedUnion("type", [textBlock, imageBlock, toolUseBlock, toolResultBlock, ...thinking]);

const tool = z.looseObject({
  name: z.string().min(1),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()),
});

const parallel = { disable_parallel_tool_use: z.boolean().optional() };
const toolChoice = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("auto"), ...parallel }),
  z.looseObject({ type: z.literal("any"), ...parallel }),
  z.looseObject({ type: z.literal("tool"), name: z.string(), ...parallel }),
  z.looseObject({ type: z.literal("none") }),
]);

export const messagesSchema = z.looseObject({
  model: z.string().min(1, "model must not be empty"),
  max_tokens: z.number().int().min(1),
  messages: z
    .array(z.looseObject({ role: z.enum(["user", "assistant"]), content: blocksOf(block) }))
    .min(1, "messages must contain at least one message"),
  system: blocksOf(textBlock).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  stop_sequences: z.array(z.string()).optional(),
  stream: z.boolean().optional(),
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  metadata: z.looseObject({ user_id: z.string().nullable().optional() }).optional(),
});

export type MessagesBody = z.infer<typeof messagesSchema>;
type Block = z.infer<typeof block>;

const joinText = (blocks: Array<{ type: string; text?: unknown }>, sep = "") =>
  blocks.flatMap((b) => (b.type === "text" ? [b.text] : [])).join(sep);

function imagePart(b: z.infer<typeof imageBlock>): OpenAIContentPart {
  const url = b.source.type === "url" ? b.source.url : `data:${b.source.media_type};base64,${b.source.data}`;
  return { type: "image_url", image_url: { url } };
}

function toOpenAIMessages(role: "user" | "assistant", blocks: Block[]): OpenAIMessage[] {
  if (role === "assistant") {
    const calls: OpenAIToolCall[] = [];
    for (const b of blocks) {
      if (b.type !== "tool_use") continue;
      calls.push({ id: b.id, type: "function", function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
    }
    const text = joinText(blocks);
    return [{ role, content: calls.length && !text ? null : text, ...(calls.length ? { tool_calls: calls } : {}) }];
  }
  const out: OpenAIMessage[] = [];
  const parts: OpenAIContentPart[] = [];
  for (const b of blocks) {
    if (b.type === "tool_result") {
      out.push({ role: "tool", tool_call_id: b.tool_use_id, content: joinText(b.content ?? []) });
    } else if (b.type === "text") {
      parts.push({ type: "text", text: b.text });
    } else if (b.type === "image") {
      parts.push(imagePart(b));
    }
  }
  // tool results alone make no user message
  if (parts.length || !out.length) {
    const single = parts.length === 1 && parts[0].type === "text";
    out.push({ role, content: single ? (parts[0] as { text: string }).text : parts.length ? parts : "" });
  }
  return out;
}

function toOpenAIToolChoice(c: z.infer<typeof toolChoice>): OpenAIToolChoice {
  if (c.type === "tool") return { type: "function", function: { name: c.name } };
  return c.type === "any" ? "required" : c.type;
}

/** Messages fields that ask for nothing here: labels, and thinking switched off. */
const IGNORED_FIELDS: Record<string, (v: unknown) => boolean> = {
  service_tier: () => true,
  thinking: (v) => (v as { type?: unknown } | null)?.type === "disabled",
};

/** A 400 for a field the router cannot honour (top_k, thinking, containers…): never silently dropped. */
function refuseUnsupported(body: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined || value === null || Object.hasOwn(messagesSchema.shape, key)) continue;
    if (Object.hasOwn(IGNORED_FIELDS, key) && IGNORED_FIELDS[key](value)) continue;
    throw badRequest(`'${key}' is not supported by the router's Messages API.`, key, "unsupported_parameter");
  }
}

/** Validates a Messages request (a 400 naming the bad field) and returns it as an OpenAI chat request. */
export function parseMessagesRequest(body: unknown): OpenAIChatRequest {
  const b = parseBody(messagesSchema, body);
  refuseUnsupported(b);
  const messages: OpenAIMessage[] = [];
  const system = joinText(b.system ?? [], "\n");
  if (system) messages.push({ role: "system", content: system });
  for (const m of b.messages) messages.push(...toOpenAIMessages(m.role, m.content));
  const req: OpenAIChatRequest = { model: b.model, messages, max_tokens: b.max_tokens };
  if (b.temperature !== undefined) req.temperature = b.temperature;
  if (b.top_p !== undefined) req.top_p = b.top_p;
  if (b.stop_sequences?.length) req.stop = b.stop_sequences;
  if (b.stream) {
    req.stream = true;
    req.stream_options = { include_usage: true };
  }
  if (b.tools?.length) {
    req.tools = b.tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        parameters: t.input_schema,
      },
    }));
  }
  if (b.tool_choice) req.tool_choice = toOpenAIToolChoice(b.tool_choice);
  if (b.tool_choice && "disable_parallel_tool_use" in b.tool_choice && b.tool_choice.disable_parallel_tool_use) {
    req.parallel_tool_calls = false;
  }
  if (b.metadata?.user_id) req.user = b.metadata.user_id;
  return req;
}

const STOP_REASONS: Record<OpenAIFinishReason, string> = {
  stop: "end_turn",
  length: "max_tokens",
  tool_calls: "tool_use",
  content_filter: "refusal",
};

/** `msg_…` from an OpenAI completion id. */
const messageId = (id: string) => (id.startsWith("msg_") ? id : `msg_${id.replace(/^chatcmpl-/, "")}`);

/** The tool_use input of OpenAI arguments (an object; `{}` when they are not one). */
function toolInput(args: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(args);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return {};
}

/** An OpenAI chat completion as a Messages API answer; `model` as the client named it. */
export function toAnthropicMessage(c: OpenAIChatCompletion, model: string): object {
  const choice = c.choices[0];
  const text = choice?.message.content ?? "";
  const calls = choice?.message.tool_calls ?? [];
  const content: object[] = text || !calls.length ? [{ type: "text", text }] : [];
  for (const call of calls) {
    content.push({
      type: "tool_use",
      id: call.id,
      name: call.function.name,
      input: toolInput(call.function.arguments),
    });
  }
  return {
    id: messageId(c.id),
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: STOP_REASONS[choice?.finish_reason ?? "stop"] ?? "end_turn",
    stop_sequence: null,
    usage: { input_tokens: c.usage?.prompt_tokens ?? 0, output_tokens: c.usage?.completion_tokens ?? 0 },
  };
}

export interface AnthropicSseEvent {
  event: string;
  data: object;
}

/** One event as it goes on the wire. */
export const formatSse = (ev: AnthropicSseEvent) => `event: ${ev.event}\ndata: ${JSON.stringify(ev.data)}\n\n`;

const ev = (data: { type: string } & Record<string, unknown>): AnthropicSseEvent => ({ event: data.type, data });

/**
 * Turns OpenAI chunks into Anthropic's stream events, in the order the SDK
 * expects: message_start, then each block's start, deltas and stop, then
 * message_delta (held until the usage chunk or the end) and message_stop.
 */
export class AnthropicStreamWriter {
  private started = false;
  private done = false;
  /** The open block's index and type, if one is open. */
  private open: { index: number; type: "text" | "tool_use" } | null = null;
  private blocks = 0;
  /** OpenAI tool call index → block index. */
  private tools = new Map<number, number>();
  private stopReason: string | null = null;
  private usage: { input: number; output: number } | null = null;

  /** `model`: as the client named it (else the first chunk's); `id`: the message id (else derived from the first chunk's). */
  constructor(
    private readonly model?: string,
    private readonly opts: { id?: string; inputTokens?: number } = {},
  ) {}

  push(chunk: OpenAIChunk): AnthropicSseEvent[] {
    if (this.done) return [];
    const out = this.start(chunk.id, chunk.model);
    const choice = chunk.choices[0];
    if (choice) {
      const { content, tool_calls: calls } = choice.delta;
      if (content) {
        if (this.open?.type !== "text") out.push(...this.openBlock({ type: "text", text: "" }));
        out.push(this.delta({ type: "text_delta", text: content }, this.open!.index));
      }
      for (const tc of calls ?? []) {
        let index = this.tools.get(tc.index);
        if (index === undefined) {
          const id = tc.id || `toolu_${this.messageId(chunk.id).slice(4)}_${tc.index}`;
          out.push(...this.openBlock({ type: "tool_use", id, name: tc.function?.name ?? "", input: {} }));
          index = this.open!.index;
          this.tools.set(tc.index, index);
        }
        const args = tc.function?.arguments;
        if (args) out.push(this.delta({ type: "input_json_delta", partial_json: args }, index));
      }
      if (choice.finish_reason) {
        out.push(...this.closeBlock());
        this.stopReason = STOP_REASONS[choice.finish_reason] ?? "end_turn";
      }
    }
    if (chunk.usage) this.usage = { input: chunk.usage.prompt_tokens, output: chunk.usage.completion_tokens };
    if (this.stopReason && this.usage) out.push(...this.finish());
    return out;
  }

  end(): AnthropicSseEvent[] {
    if (this.done) return [];
    return [...this.start("", ""), ...this.finish()];
  }

  private messageId(chunkId: string): string {
    return this.opts.id ?? messageId(chunkId || `${Date.now()}`);
  }

  private start(chunkId: string, chunkModel: string): AnthropicSseEvent[] {
    if (this.started) return [];
    this.started = true;
    const message = {
      id: this.messageId(chunkId),
      type: "message",
      role: "assistant",
      model: this.model ?? chunkModel,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: this.opts.inputTokens ?? 0, output_tokens: 0 },
    };
    return [ev({ type: "message_start", message })];
  }

  private openBlock(contentBlock: { type: "text" | "tool_use" } & Record<string, unknown>): AnthropicSseEvent[] {
    const out = this.closeBlock();
    this.open = { index: this.blocks++, type: contentBlock.type };
    out.push(ev({ type: "content_block_start", index: this.open.index, content_block: contentBlock }));
    return out;
  }

  private closeBlock(): AnthropicSseEvent[] {
    if (!this.open) return [];
    const index = this.open.index;
    this.open = null;
    return [ev({ type: "content_block_stop", index })];
  }

  private delta(delta: Record<string, unknown>, index: number): AnthropicSseEvent {
    return ev({ type: "content_block_delta", index, delta });
  }

  private finish(): AnthropicSseEvent[] {
    const out = this.closeBlock();
    this.done = true;
    const stop_reason = this.stopReason ?? (this.tools.size ? "tool_use" : "end_turn");
    const usage: Record<string, number> = { output_tokens: this.usage?.output ?? 0 };
    if (this.usage) usage.input_tokens = this.usage.input;
    out.push(ev({ type: "message_delta", delta: { stop_reason, stop_sequence: null }, usage }));
    out.push(ev({ type: "message_stop" }));
    return out;
  }
}

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  503: "overloaded_error",
  504: "timeout_error",
  529: "overloaded_error",
};

/** An error body in Anthropic's shape (also the data of a stream `error` event). */
export function anthropicError(
  status: number,
  message: string,
): { type: "error"; error: { type: string; message: string } } {
  const type = ERROR_TYPES[status] ?? (status < 500 ? "invalid_request_error" : "api_error");
  return { type: "error", error: { type, message } };
}
