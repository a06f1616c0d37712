/**
 * OpenAI's Responses API, the answer side: the router runs a Responses request
 * on its chat path, and the chat answer (a completion, or chunks) goes back as
 * a `response` object or as the Responses stream's typed events, in the order
 * OpenAI sends them. Shapes: openai/resources/responses/responses.d.ts
 * (Response, ResponseOutputItem, ResponseStreamEvent).
 */
import { randomBytes } from "node:crypto";
import type { OpenAIChatCompletion, OpenAIChunk, OpenAIFinishReason, OpenAIUsage } from "../providers/types";

/** What a response is stamped with. */
export interface ResponseMeta {
  /** `resp_…` (newResponseId()). */
  id: string;
  /** The model as the client named it. */
  model: string;
  /** Unix seconds. */
  createdAt: number;
  /**
   * Request fields the response object repeats (instructions, metadata, tools, tool_choice,
   * parallel_tool_calls, text, temperature, top_p, max_output_tokens, store, previous_response_id,
   * user, reasoning…): absent (or null) ones get the API's defaults.
   */
  echo: Record<string, unknown>;
}

export interface ResponsesEvent {
  event: string;
  data: { type: string; sequence_number: number } & Record<string, unknown>;
}

type ItemStatus = "in_progress" | "completed" | "incomplete";
type OutputText = { type: "output_text"; text: string; annotations: unknown[]; logprobs: unknown[] };
type MessageItem = { type: "message"; id: string; status: ItemStatus; role: "assistant"; content: OutputText[] };
type CallItem = {
  type: "function_call";
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: ItemStatus;
};
type OutputItem = MessageItem | CallItem;

const newId = (prefix: string) => `${prefix}_${randomBytes(24).toString("hex")}`;

/** `resp_` and 48 hex digits. */
export function newResponseId(): string {
  return newId("resp");
}

/** One event as it goes on the wire. */
export const formatEvent = (e: ResponsesEvent) => `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;

/** Finish reasons that make a response `incomplete`, and the reason it gives. */
const INCOMPLETE: Partial<Record<OpenAIFinishReason, "max_output_tokens" | "content_filter">> = {
  length: "max_output_tokens",
  content_filter: "content_filter",
};

/** Echo fields' values when the request left them out. */
const ECHO_DEFAULTS: Record<string, unknown> = {
  instructions: null,
  max_output_tokens: null,
  metadata: {},
  parallel_tool_calls: true,
  previous_response_id: null,
  reasoning: null,
  store: null,
  temperature: null,
  text: { format: { type: "text" } },
  tool_choice: "auto",
  tools: [],
  top_p: null,
  truncation: "disabled",
  user: null,
};

const outputText = (text: string): OutputText => ({ type: "output_text", text, annotations: [], logprobs: [] });
const message = (status: ItemStatus, content: OutputText[] = []): MessageItem => ({
  type: "message",
  id: newId("msg"),
  status,
  role: "assistant",
  content,
});
const functionCall = (call_id: string, name: string, args: string, status: ItemStatus): CallItem => ({
  type: "function_call",
  id: newId("fc"),
  call_id,
  name,
  arguments: args,
  status,
});

/** A copy of an item as it is now, for an event (the writer keeps changing its own). */
const snapshot = (item: OutputItem): OutputItem =>
  item.type === "message" ? { ...item, content: item.content.map((p) => ({ ...p })) } : { ...item };

type Details = { cached_tokens?: number; reasoning_tokens?: number } | undefined;

/** Chat usage in the Responses shape (null when the answer had none). */
function usageOf(u: OpenAIUsage | null | undefined): Record<string, unknown> | null {
  if (!u) return null;
  const extra = u as { prompt_tokens_details?: Details; completion_tokens_details?: Details };
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: extra.prompt_tokens_details?.cached_tokens ?? 0 },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: extra.completion_tokens_details?.reasoning_tokens ?? 0 },
    total_tokens: u.total_tokens ?? u.prompt_tokens + u.completion_tokens,
  };
}

type State = {
  status: "in_progress" | "completed" | "incomplete" | "failed";
  output: OutputItem[];
  usage: OpenAIUsage | null | undefined;
  incomplete?: string | null;
  error?: { code: string | null; message: string };
};

/** The response object: echoed request fields over their defaults, then what this answer says. */
function responseObject(meta: ResponseMeta, s: State): Record<string, unknown> {
  const echoed: Record<string, unknown> = { ...ECHO_DEFAULTS };
  for (const [key, value] of Object.entries(meta.echo)) {
    if (value === undefined || (value === null && echoed[key] != null)) continue;
    echoed[key] = value;
  }
  return {
    id: meta.id,
    object: "response",
    created_at: meta.createdAt,
    status: s.status,
    error: s.error ?? null,
    incomplete_details: s.incomplete ? { reason: s.incomplete } : null,
    ...echoed,
    model: meta.model,
    output: s.output,
    usage: usageOf(s.usage),
  };
}

/** Choice 0: Responses has one, a chat answer several when asked (`n`). */
const choice0 = <T extends { index: number }>(choices: T[]): T | undefined => choices.find((c) => c.index === 0);

/** A finished chat completion as a Response object. */
export function toResponse(meta: ResponseMeta, completion: OpenAIChatCompletion): Record<string, unknown> {
  const choice = choice0(completion.choices) ?? completion.choices[0];
  const text = choice?.message.content ?? "";
  const calls = choice?.message.tool_calls ?? [];
  const output: OutputItem[] = [];
  if (text || !calls.length) output.push(message("completed", [outputText(text)]));
  for (const c of calls) output.push(functionCall(c.id, c.function.name, c.function.arguments, "completed"));
  const incomplete = INCOMPLETE[choice?.finish_reason ?? "stop"] ?? null;
  // the item the limit cut short
  if (incomplete) output[output.length - 1].status = "incomplete";
  return responseObject(meta, {
    status: incomplete ? "incomplete" : "completed",
    output,
    usage: completion.usage,
    incomplete,
  });
}

/**
 * Turns chat chunks into the Responses stream's events: response.created and
 * response.in_progress, then each output item's added, deltas and done (an
 * item closes when the next opens, or at the finish), then response.completed
 * or response.incomplete, held until the usage chunk (or end()).
 */
export class ResponsesStreamWriter {
  private seq = 0;
  private started = false;
  private done = false;
  private items: OutputItem[] = [];
  private open: { item: OutputItem; index: number } | null = null;
  /** Chat tool call index → its item. */
  private calls = new Map<number, CallItem>();
  private finish: OpenAIFinishReason | null = null;
  private usage: OpenAIUsage | null = null;
  private last: Record<string, unknown> | null = null;

  constructor(private readonly meta: ResponseMeta) {}

  /** The final Response object (what response.completed, .incomplete or .failed carried); null until then. */
  get final(): Record<string, unknown> | null {
    return this.last;
  }

  push(chunk: OpenAIChunk): ResponsesEvent[] {
    if (this.done) return [];
    const out = this.start();
    const choice = choice0(chunk.choices);
    if (choice && !this.finish) {
      const { content, tool_calls: calls } = choice.delta;
      if (content) out.push(...this.text(content));
      for (const tc of calls ?? []) out.push(...this.toolCall(tc));
      if (choice.finish_reason) {
        this.finish = choice.finish_reason;
        out.push(...this.settle());
      }
    }
    if (chunk.usage) this.usage = chunk.usage;
    if (this.finish && this.usage) out.push(...this.complete());
    return out;
  }

  /** The stream ended: open items close, and response.completed (or .incomplete) goes out. */
  end(): ResponsesEvent[] {
    if (this.done) return [];
    return [...this.start(), ...this.complete()];
  }

  /** The stream broke: response.failed, with the items so far (an open one `incomplete`). */
  fail(message: string, code: string | null): ResponsesEvent[] {
    if (this.done) return [];
    const out = this.start();
    if (this.open) this.open.item.status = "incomplete";
    this.open = null;
    return [...out, this.conclude("response.failed", { status: "failed", error: { code, message } })];
  }

  private ev(type: string, fields: Record<string, unknown>): ResponsesEvent {
    return { event: type, data: { type, sequence_number: this.seq++, ...fields } };
  }

  private start(): ResponsesEvent[] {
    if (this.started) return [];
    this.started = true;
    const response = responseObject(this.meta, { status: "in_progress", output: [], usage: null });
    return [this.ev("response.created", { response }), this.ev("response.in_progress", { response })];
  }

  private add(item: OutputItem): ResponsesEvent[] {
    const out = this.close("completed");
    this.open = { item, index: this.items.push(item) - 1 };
    out.push(this.ev("response.output_item.added", { output_index: this.open.index, item: snapshot(item) }));
    if (item.type === "message") {
      item.content.push(outputText(""));
      const part = outputText("");
      out.push(this.ev("response.content_part.added", { ...this.where(), content_index: 0, part }));
    }
    return out;
  }

  private where() {
    return { item_id: this.open!.item.id, output_index: this.open!.index };
  }

  private text(delta: string): ResponsesEvent[] {
    const out: ResponsesEvent[] = [];
    if (this.open?.item.type !== "message") {
      out.push(...this.add(message("in_progress")));
    }
    (this.open!.item as MessageItem).content[0].text += delta;
    out.push(this.ev("response.output_text.delta", { ...this.where(), content_index: 0, delta, logprobs: [] }));
    return out;
  }

  private toolCall(tc: NonNullable<OpenAIChunk["choices"][number]["delta"]["tool_calls"]>[number]): ResponsesEvent[] {
    const out: ResponsesEvent[] = [];
    let call = this.calls.get(tc.index);
    if (!call) {
      call = functionCall(tc.id || newId("call"), tc.function?.name ?? "", "", "in_progress");
      this.calls.set(tc.index, call);
      out.push(...this.add(call));
    } else if (!call.name && tc.function?.name) {
      call.name = tc.function.name;
    }
    const delta = tc.function?.arguments;
    if (!delta) return out;
    // a fragment for a call already closed (chat streams do not interleave calls) still counts in the final response
    call.arguments += delta;
    if (this.open?.item !== call) return out;
    out.push(this.ev("response.function_call_arguments.delta", { ...this.where(), delta }));
    return out;
  }

  /** Closes the open item with its done events. */
  private close(status: ItemStatus): ResponsesEvent[] {
    if (!this.open) return [];
    const { item } = this.open;
    const where = this.where();
    this.open = null;
    item.status = status;
    const out: ResponsesEvent[] = [];
    if (item.type === "message") {
      const part = { ...item.content[0] };
      out.push(this.ev("response.output_text.done", { ...where, content_index: 0, text: part.text, logprobs: [] }));
      out.push(this.ev("response.content_part.done", { ...where, content_index: 0, part }));
    } else {
      const { name, arguments: args } = item;
      out.push(this.ev("response.function_call_arguments.done", { ...where, name, arguments: args }));
    }
    out.push(this.ev("response.output_item.done", { output_index: where.output_index, item: snapshot(item) }));
    return out;
  }

  /** At the finish: an empty message when nothing was said, and the open item closed (cut short: `incomplete`). */
  private settle(): ResponsesEvent[] {
    const out: ResponsesEvent[] = [];
    if (!this.items.length) {
      out.push(...this.add(message("in_progress")));
    }
    out.push(...this.close(this.cut ? "incomplete" : "completed"));
    return out;
  }

  private complete(): ResponsesEvent[] {
    const out = this.settle();
    const incomplete = this.cut;
    const type = incomplete ? "response.incomplete" : "response.completed";
    return [...out, this.conclude(type, { status: incomplete ? "incomplete" : "completed", incomplete })];
  }

  /** The finish reason's `incomplete_details.reason`, if it has one. */
  private get cut() {
    return (this.finish && INCOMPLETE[this.finish]) || null;
  }

  /** The last event, carrying the final response. */
  private conclude(type: string, s: Pick<State, "status" | "incomplete" | "error">): ResponsesEvent {
    this.done = true;
    this.last = responseObject(this.meta, { ...s, output: this.items.map(snapshot), usage: this.usage });
    return this.ev(type, { response: this.last });
  }
}
