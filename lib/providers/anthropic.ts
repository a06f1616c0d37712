/**
 * Anthropic (Messages API, `POST /v1/messages`, anthropic-version 2023-06-01):
 * an OpenAI chat request becomes a Messages request (system hoisted, roles
 * alternating, tools and images translated), and the Message answers and SSE
 * stream events come back as OpenAI completions and chunks. Formats:
 * docs.anthropic.com/en/api/messages, /en/api/messages-streaming,
 * /en/docs/build-with-claude/tool-use, /en/api/errors.
 *
 * A JSON `response_format` is a forced tool (anthropic-params.ts); the call's
 * input comes back to the client as the message content (a JSON string),
 * whole or streamed, finishing with "stop". What each other OpenAI parameter
 * becomes (REFUSED, IGNORED, parallel_tool_calls): anthropic-params.ts.
 */
import { forcedJsonTool, jsonContent, parallelToolChoice, REFUSED, wantsJson } from "./anthropic-params";
import { chatCompletion } from "./completion";
import type {
  OpenAIChatCompletion,
  OpenAIChunk,
  OpenAIFinishReason,
  OpenAIMessage,
  OpenAIToolCall,
  OpenAIToolChoice,
  OpenAIUsage,
  Provider,
} from "./types";
import { ProviderError, refuseParams } from "./types";

export const ANTHROPIC_VERSION = "2023-06-01";
/** Anthropic requires max_tokens; this is sent when the client gave none. */
export const DEFAULT_MAX_TOKENS = 4096;

type Block = Record<string, unknown> & { type: string };

interface AnthropicMessage {
  role: "user" | "assistant";
  content: Block[];
}

interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

interface AnthropicResponse {
  id?: string;
  content?: Array<{ type: string; text?: string; id?: string; name?: string; input?: unknown }>;
  stop_reason?: string | null;
  usage?: AnthropicUsage;
}

interface AnthropicEvent {
  type?: string;
  index?: number;
  message?: AnthropicResponse;
  content_block?: { type: string; text?: string; id?: string; name?: string; input?: unknown };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string | null };
  usage?: AnthropicUsage;
  error?: { type?: string; message?: string };
}

type ChunkDelta = OpenAIChunk["choices"][number]["delta"];

/** Stream error types and the HTTP status they stand for; others are 502. */
const ERROR_STATUS: Record<string, number> = { overloaded_error: 529, rate_limit_error: 429, api_error: 500 };

function textOf(content: OpenAIMessage["content"]): string {
  if (typeof content === "string") return content;
  return (content ?? []).map((p) => (p.type === "text" ? p.text : "")).join("");
}

/** The JSON object in `text`, or `{}` (Anthropic's tool_use input must be an object). */
function parseInput(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return {};
}

function imageBlock(url: string): Block {
  const m = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/s.exec(url);
  if (!m) return { type: "image", source: { type: "url", url } };
  let data = m[3];
  if (!m[2].split(";").includes("base64")) {
    try {
      data = decodeURIComponent(data);
    } catch {
      // not percent-encoded: as it is
    }
    data = Buffer.from(data).toString("base64");
  }
  return { type: "image", source: { type: "base64", media_type: m[1] || "image/jpeg", data } };
}

function userBlocks(content: OpenAIMessage["content"]): Block[] {
  if (typeof content === "string") return content ? [{ type: "text", text: content }] : [];
  return (content ?? [])
    .filter((p) => p.type !== "text" || p.text)
    .map((p) => (p.type === "text" ? { type: "text", text: p.text } : imageBlock(p.image_url.url)));
}

/** The system prompt and Anthropic's messages: roles alternate, tool results lead their user turn. */
function toMessages(messages: OpenAIMessage[]): { system: string; messages: AnthropicMessage[] } {
  const system: string[] = [];
  const out: AnthropicMessage[] = [];
  const add = (role: AnthropicMessage["role"], blocks: Block[]) => {
    if (!blocks.length) return;
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const m of messages) {
    if (m.role === "system" || m.role === "developer") {
      const text = textOf(m.content);
      if (text) system.push(text);
    } else if (m.role === "user") {
      add("user", userBlocks(m.content));
    } else if (m.role === "assistant") {
      const text = textOf(m.content);
      const blocks: Block[] = text ? [{ type: "text", text }] : [];
      for (const call of m.tool_calls ?? []) {
        const input = parseInput(call.function.arguments);
        blocks.push({ type: "tool_use", id: call.id, name: call.function.name, input });
      }
      add("assistant", blocks);
    } else if (m.role === "tool") {
      const text = textOf(m.content);
      add("user", [{ type: "tool_result", tool_use_id: m.tool_call_id ?? "", ...(text ? { content: text } : {}) }]);
    }
  }
  for (const msg of out) {
    // tool results must come first in a user turn; sort is stable
    if (msg.role === "user") msg.content.sort((a, b) => rank(a) - rank(b));
  }
  // a final assistant turn (a prefill) may not end with whitespace
  const last = out.at(-1);
  const tail = last?.role === "assistant" ? last.content.at(-1) : undefined;
  if (tail?.type === "text" && typeof tail.text === "string") tail.text = tail.text.trimEnd();
  return { system: system.join("\n\n"), messages: out };
}

const rank = (b: Block) => (b.type === "tool_result" ? 0 : 1);

/** A lone text block goes as a plain string. */
function simplify(m: AnthropicMessage): { role: string; content: string | Block[] } {
  const [only] = m.content;
  return m.content.length === 1 && only.type === "text" ? { role: m.role, content: only.text as string } : m;
}

function toolChoice(choice: OpenAIToolChoice | null | undefined): Record<string, unknown> | undefined {
  if (choice == null) return undefined;
  if (typeof choice === "object") return { type: "tool", name: choice.function.name };
  return { type: choice === "required" ? "any" : choice };
}

function finishReason(reason: string | null | undefined, hasCalls: boolean, json = false): OpenAIFinishReason {
  switch (reason) {
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      // the forced JSON tool's call is the answer itself
      return json ? "stop" : "tool_calls";
    case "refusal":
      return "content_filter";
    case "end_turn":
    case "stop_sequence":
    case "pause_turn":
      return "stop";
    default:
      return hasCalls ? "tool_calls" : "stop";
  }
}

/** Input tokens as OpenAI counts them: cache writes and reads included. */
function inputTokens(u: AnthropicUsage | undefined): number {
  return (u?.input_tokens ?? 0) + (u?.cache_creation_input_tokens ?? 0) + (u?.cache_read_input_tokens ?? 0);
}

function toUsage(prompt: number, completion: number): OpenAIUsage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export const anthropic: Provider = {
  name: "anthropic",

  request(req, cfg) {
    refuseParams(req, "Anthropic", REFUSED);
    const { system, messages } = toMessages(req.messages);
    const body: Record<string, unknown> = {
      model: req.model,
      max_tokens: req.max_completion_tokens ?? req.max_tokens ?? DEFAULT_MAX_TOKENS,
    };
    if (system) body.system = system;
    body.messages = messages.map(simplify);
    // OpenAI's temperature goes to 2, Anthropic's to 1
    if (req.temperature != null) body.temperature = Math.min(Math.max(req.temperature, 0), 1);
    if (req.top_p != null) body.top_p = req.top_p;
    const stop = (typeof req.stop === "string" ? [req.stop] : (req.stop ?? [])).filter((s) => s.length > 0);
    if (stop.length) body.stop_sequences = stop;
    if (req.stream) body.stream = true;
    if (req.tools?.length) {
      body.tools = req.tools.map((t) => ({
        name: t.function.name,
        ...(t.function.description ? { description: t.function.description } : {}),
        input_schema: t.function.parameters ?? { type: "object", properties: {} },
      }));
      const choice = parallelToolChoice(toolChoice(req.tool_choice), req.parallel_tool_calls);
      if (choice) body.tool_choice = choice;
    }
    const json = forcedJsonTool(req);
    if (json) {
      body.tools = json.tools;
      body.tool_choice = json.tool_choice;
    }
    // Anthropic's end-user id, for its abuse checks: OpenAI's safety_identifier, or the older user
    const userId = req.safety_identifier || req.user;
    if (userId) body.metadata = { user_id: userId };
    return {
      url: `${cfg.baseUrl.replace(/\/+$/, "")}/v1/messages`,
      headers: { "x-api-key": cfg.apiKey, "anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json" },
      body,
    };
  },

  response(body, meta, req): OpenAIChatCompletion {
    const r = (body ?? {}) as AnthropicResponse;
    const blocks = r.content ?? [];
    const text = blocks.map((b) => (b.type === "text" && typeof b.text === "string" ? b.text : "")).join("");
    const usage = toUsage(inputTokens(r.usage), r.usage?.output_tokens ?? 0);
    if (wantsJson(req)) {
      return chatCompletion(meta, jsonContent(blocks, text), [], finishReason(r.stop_reason, false, true), usage);
    }
    const calls = blocks.flatMap((b): OpenAIToolCall[] =>
      b.type === "tool_use"
        ? [
            {
              id: b.id ?? "",
              type: "function",
              function: { name: b.name ?? "", arguments: JSON.stringify(b.input ?? {}) },
            },
          ]
        : [],
    );
    return chatCompletion(meta, text, calls, finishReason(r.stop_reason, calls.length > 0), usage);
  },

  stream(meta, req) {
    const json = wantsJson(req);
    /** JSON mode: the forced tool's block index, once it started, and whether any of its JSON was sent. */
    let jsonBlock: number | undefined;
    let jsonSent = false;
    let started = false;
    let finished = false;
    let usageSent = false;
    let input = 0;
    let output = 0;
    /** Anthropic block index → OpenAI tool call index. */
    const calls = new Map<number, number>();
    const envelope = {
      id: meta.id,
      object: "chat.completion.chunk" as const,
      created: meta.created,
      model: meta.model,
    };
    const chunk = (delta: ChunkDelta, finish: OpenAIFinishReason | null = null): OpenAIChunk => {
      const d: ChunkDelta = started ? delta : { role: "assistant", ...delta };
      started = true;
      return { ...envelope, choices: [{ index: 0, delta: d, logprobs: null, finish_reason: finish }] };
    };
    const finish = (reason: string | null | undefined): OpenAIChunk[] => {
      if (finished) return [];
      finished = true;
      return [chunk({}, finishReason(reason, calls.size > 0, json))];
    };
    const usage = (): OpenAIChunk[] => {
      if (usageSent) return [];
      usageSent = true;
      return [{ ...envelope, choices: [], usage: toUsage(input, output) }];
    };
    return {
      push(sse) {
        if (!sse.data.trim()) return [];
        let ev: AnthropicEvent;
        try {
          ev = JSON.parse(sse.data) as AnthropicEvent;
        } catch {
          throw new ProviderError(502, "sent a stream event that is not JSON.", "anthropic");
        }
        const type = ev.type ?? sse.event;
        const index = ev.index ?? 0;
        switch (type) {
          case "message_start":
            input = inputTokens(ev.message?.usage);
            output = ev.message?.usage?.output_tokens ?? 0;
            return started ? [] : [chunk({ content: "" })];
          case "content_block_start": {
            const b = ev.content_block;
            if (b?.type === "text") return b.text && jsonBlock === undefined ? [chunk({ content: b.text })] : [];
            if (b?.type !== "tool_use") return [];
            if (json) {
              // the forced tool's input, streamed as input_json_delta, is the content; a second call is not
              if (jsonBlock === undefined) jsonBlock = index;
              return [];
            }
            const n = calls.size;
            calls.set(index, n);
            const fn = { name: b.name ?? "", arguments: "" };
            return [chunk({ tool_calls: [{ index: n, id: b.id ?? "", type: "function", function: fn }] })];
          }
          case "content_block_delta": {
            const d = ev.delta;
            if (json) {
              // text before the JSON tool goes through (Anthropic sends none when a tool is forced)
              if (d?.type === "text_delta" && d.text && jsonBlock === undefined) return [chunk({ content: d.text })];
              if (d?.type !== "input_json_delta" || !d.partial_json || index !== jsonBlock) return [];
              jsonSent = true;
              return [chunk({ content: d.partial_json })];
            }
            if (d?.type === "text_delta" && d.text) return [chunk({ content: d.text })];
            const n = calls.get(index);
            if (d?.type === "input_json_delta" && d.partial_json && n !== undefined)
              return [chunk({ tool_calls: [{ index: n, function: { arguments: d.partial_json } }] })];
            return [];
          }
          case "content_block_stop":
            // a tool input streamed without fragments is an empty object
            if (json && index === jsonBlock && !jsonSent) {
              jsonSent = true;
              return [chunk({ content: "{}" })];
            }
            return [];
          case "message_delta":
            if (typeof ev.usage?.output_tokens === "number") output = ev.usage.output_tokens;
            if (typeof ev.usage?.input_tokens === "number") input = inputTokens(ev.usage);
            return ev.delta?.stop_reason ? finish(ev.delta.stop_reason) : [];
          case "message_stop":
            return [...finish(null), ...usage()];
          case "error": {
            const errType = ev.error?.type ?? "";
            const message = typeof ev.error?.message === "string" ? ev.error.message : "stream error";
            throw new ProviderError(ERROR_STATUS[errType] ?? 502, message, "anthropic");
          }
          default:
            // ping, and event types added later
            return [];
        }
      },
      end() {
        return [...finish(null), ...usage()];
      },
    };
  },

  errorMessage(status, body) {
    const m = (body as { error?: { message?: unknown } } | null)?.error?.message;
    if (typeof m === "string" && m.trim()) return m.trim();
    if (typeof body === "string" && body.trim()) return body.trim().slice(0, 500);
    return `Anthropic answered ${status}.`;
  },
};
