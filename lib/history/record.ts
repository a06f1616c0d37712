/**
 * One request's history record, built while the api serves it (RequestTrace)
 * and sent to the history service when it ends. Only bodies, never headers:
 * credentials have no way in.
 */
import type { Span } from "@opentelemetry/api";
import { toJson } from "../http/raw-json";

export type RequestKind = "chat" | "completion" | "embedding" | "rerank" | "legacy" | "cloud" | "responses";

export interface HistoryRecord {
  id: string;
  /** Start, as epoch ms (sorting and range filters) and ISO text. */
  ts: number;
  started_at: string;
  finished_at: string;
  endpoint: string;
  kind: RequestKind;
  stream: boolean;
  model: string | null;
  node_id: string | null;
  node_name: string | null;
  client_ip: string;
  api_key_id: string | null;
  api_key_name: string | null;
  user_id: string | null;
  request_body: unknown;
  response_body: unknown;
  status: number;
  error: string | null;
  duration_ms: number;
  ttft_ms: number | null;
  tokens_in: number | null;
  tokens_out: number | null;
  retries: number;
  nodes_tried: string[];
  /** Hosted tools (web_search…) a Responses request sent that no upstream could run: left out of the model's tools. */
  dropped_tools?: string[];
  /** The model that answered, when not the one asked for (`model`): an alias's model, or a fallback. */
  served_model?: string;
  /** How long the request waited for its model to be loaded (ms), when it did. */
  load_ms?: number;
  /** When it waited in the router's queue: its wait (ms) and how many stood ahead of it when it came. */
  queue_ms?: number;
  queue_position?: number;
}

/**
 * A body as the JSON text history stores, serialised once; one over `maxBytes` is kept as
 * its first `maxBytes` characters, marked (a string body is stored as a JSON string).
 */
export function bodyJson(body: unknown, maxBytes: number): string {
  if (body === undefined || body === null) return "null";
  let text: string;
  try {
    // an upstream's answer relayed unchanged: the text it came as
    text = toJson(body) ?? "null";
  } catch (err) {
    // what was accepted is recorded whatever its body: a record without it beats none
    return JSON.stringify({ unserializable: true, reason: clip(String((err as Error)?.message ?? err), 200) });
  }
  // a JSON text is at most 3 bytes per UTF-16 unit: most bodies need no byte count at all
  const bytes = text.length * 3 <= maxBytes ? text.length : Buffer.byteLength(text);
  if (bytes <= maxBytes) return text;
  const raw = typeof body === "string" ? body : text;
  return JSON.stringify({ truncated: true, bytes: Buffer.byteLength(raw), preview: raw.slice(0, maxBytes) });
}

/** Longest a client-supplied text field of a record may be (a model name, an error message…). */
export const MAX_FIELD_CHARS = { model: 256, error: 2048, endpoint: 256, client_ip: 64, name: 256 } as const;

/** `text` cut to `max` characters, marked with an ellipsis when cut. */
export function clip(text: string, max: number): string;
export function clip(text: string | null, max: number): string | null;
export function clip(text: string | null, max: number): string | null {
  if (text === null || text.length <= max) return text;
  return `${text.slice(0, max - 1)}…`;
}

/**
 * What the api sends the history service: a record with its bodies as JSON
 * text (serialised once, here), so nothing downstream copies or re-encodes them.
 */
export type RecordEvent = Omit<HistoryRecord, "request_body" | "response_body"> & {
  request_json: string;
  response_json: string;
};

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

interface ToolCallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

interface Chunk {
  choices?: Array<{
    delta?: { content?: string | null; tool_calls?: ToolCallDelta[] };
    text?: string;
    finish_reason?: string | null;
  }>;
  usage?: Usage | null;
}

interface AssembledCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A streamed answer put back together: the text, the tool calls, why it ended, and its usage. */
export class StreamAssembler {
  text = "";
  finishReason: string | null = null;
  usage: Usage | null = null;
  chunks = 0;
  private readonly toolCalls: AssembledCall[] = [];

  add(chunk: unknown): void {
    const c = chunk as Chunk;
    this.chunks++;
    for (const choice of c.choices ?? []) {
      this.text += choice.delta?.content ?? choice.text ?? "";
      for (const d of choice.delta?.tool_calls ?? []) this.addToolCall(d);
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
    }
    if (c.usage) this.usage = c.usage;
  }

  private addToolCall(d: ToolCallDelta): void {
    const i = typeof d.index === "number" && d.index >= 0 && d.index < 1024 ? d.index : this.toolCalls.length;
    const call = (this.toolCalls[i] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
    if (d.id) call.id = d.id;
    if (d.function?.name) call.function.name = d.function.name;
    call.function.arguments += d.function?.arguments ?? "";
  }

  body(): { text: string; tool_calls?: AssembledCall[]; finish_reason: string | null; usage: Usage | null } {
    const calls = this.toolCalls.filter(Boolean);
    return calls.length
      ? { text: this.text, tool_calls: calls, finish_reason: this.finishReason, usage: this.usage }
      : { text: this.text, finish_reason: this.finishReason, usage: this.usage };
  }
}

export interface TraceStart {
  id: string;
  endpoint: string;
  kind: RequestKind;
  clientIp: string;
  apiKey: { id: string; name: string; owner: string } | null;
  body: unknown;
  maxBodyBytes: number;
  now?: number;
}

/** What the api learns about one request while serving it. */
export class RequestTrace {
  private readonly startedAt: number;
  private readonly startedPerf = performance.now();
  private ttft: number | null = null;
  private endedPerf: number | null = null;
  private endedAt: number | null = null;
  private readonly tried: Array<{ id: string; name: string | null }> = [];
  private response: unknown = null;
  private usage: Usage | null = null;
  model: string | null = null;
  stream = false;
  /** Set to "cloud" when the model turns out to be a cloud one. */
  kind: RequestKind;
  /** Tools the request sent that were left out (hosted tools only their provider runs). */
  droppedTools: string[] = [];
  /** The model that answered (an alias's, or a fallback), when not `model`. */
  servedModel: string | null = null;
  /** Time spent waiting for the model to load (ms). */
  loadMs: number | null = null;
  private queue: { ahead: number; waitedMs: number } | null = null;
  /** Its server span, when tracing is on (lib/telemetry/tracing.ts): the balancer's pick and the node's spans are its children. */
  span: Span | null = null;
  /** Counts the tokens against the key's limits as they flow (lib/quota/meter.ts), when it has limits. */
  meter: { add(tokens: number): void; end(total: number | null): void } | null = null;

  constructor(private readonly start: TraceStart) {
    this.startedAt = start.now ?? Date.now();
    this.kind = start.kind;
  }

  /** A node (or runtime) was chosen for an attempt. */
  attempt(nodeId: string, nodeName: string | null = null): void {
    this.tried.push({ id: nodeId, name: nodeName });
  }

  /** The request ended (answered, failed or abandoned): its duration and finish time stop here. */
  end(now = Date.now()): void {
    this.endedPerf ??= performance.now();
    this.endedAt ??= now;
  }

  /** It waited in the router's queue (the last attempt's wait is kept, summed over attempts). */
  queued(ahead: number, waitedMs: number): void {
    this.queue = { ahead, waitedMs: (this.queue?.waitedMs ?? 0) + waitedMs };
  }

  firstByte(): void {
    this.ttft ??= performance.now() - this.startedPerf;
  }

  /** The answer sent (a completion object, or an assembled stream). */
  answered(response: unknown, usage?: Usage | null): void {
    this.response = response;
    this.usage = usage ?? (response as { usage?: Usage } | null)?.usage ?? null;
  }

  /** The path it came to (no query string). */
  get endpoint(): string {
    return this.start.endpoint;
  }

  /** What its span says of it when it ends (lib/telemetry/tracing.ts). */
  spanAttributes(status: number): Record<string, string | number> {
    const last = this.tried[this.tried.length - 1];
    const out: Record<string, string | number> = { "http.response.status_code": status, "llm_router.kind": this.kind };
    if (this.model) out["gen_ai.request.model"] = this.model;
    if (this.servedModel) out["gen_ai.response.model"] = this.servedModel;
    if (last) out["llm_router.node"] = last.id;
    if (this.tried.length > 1) out["llm_router.retries"] = this.tried.length - 1;
    if (this.usage?.prompt_tokens !== undefined) out["gen_ai.usage.input_tokens"] = this.usage.prompt_tokens;
    if (this.usage?.completion_tokens !== undefined) out["gen_ai.usage.output_tokens"] = this.usage.completion_tokens;
    if (this.queue) out["llm_router.queue_wait_ms"] = Math.round(this.queue.waitedMs);
    return out;
  }

  /** Tokens in and out the answer's usage reports (null: none reported). */
  tokensUsed(): number | null {
    if (!this.usage) return null;
    return (this.usage.prompt_tokens ?? 0) + (this.usage.completion_tokens ?? 0);
  }

  record(status: number, error: string | null, now = this.endedAt ?? Date.now()): RecordEvent {
    const last = this.tried[this.tried.length - 1];
    const s = this.start;
    return {
      id: s.id,
      ts: this.startedAt,
      started_at: new Date(this.startedAt).toISOString(),
      finished_at: new Date(now).toISOString(),
      endpoint: clip(s.endpoint, MAX_FIELD_CHARS.endpoint),
      kind: this.kind,
      stream: this.stream,
      model: clip(this.model, MAX_FIELD_CHARS.model),
      node_id: last?.id ?? null,
      node_name: clip(last?.name ?? null, MAX_FIELD_CHARS.name),
      client_ip: clip(s.clientIp, MAX_FIELD_CHARS.client_ip),
      api_key_id: s.apiKey?.id ?? null,
      api_key_name: clip(s.apiKey?.name ?? null, MAX_FIELD_CHARS.name),
      user_id: s.apiKey?.owner ?? null,
      request_json: bodyJson(s.body, s.maxBodyBytes),
      response_json: bodyJson(this.response, s.maxBodyBytes),
      status,
      error: clip(error, MAX_FIELD_CHARS.error),
      duration_ms: Math.round(((this.endedPerf ?? performance.now()) - this.startedPerf) * 10) / 10,
      ttft_ms: this.ttft === null ? null : Math.round(this.ttft * 10) / 10,
      tokens_in: this.usage?.prompt_tokens ?? null,
      tokens_out: this.usage?.completion_tokens ?? null,
      retries: Math.max(0, this.tried.length - 1),
      nodes_tried: this.tried.map((t) => t.id),
      ...(this.droppedTools.length ? { dropped_tools: this.droppedTools } : {}),
      ...(this.servedModel !== null && this.servedModel !== this.model
        ? { served_model: clip(this.servedModel, MAX_FIELD_CHARS.model) }
        : {}),
      ...(this.loadMs !== null ? { load_ms: Math.round(this.loadMs) } : {}),
      ...(this.queue ? { queue_ms: Math.round(this.queue.waitedMs), queue_position: this.queue.ahead } : {}),
    };
  }
}
