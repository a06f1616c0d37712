/**
 * Google Gemini (Google AI, generativelanguage.googleapis.com v1beta): an
 * OpenAI chat request becomes `models/{model}:generateContent` (or
 * `:streamGenerateContent?alt=sse`), and the GenerateContentResponse answers
 * and stream events come back as OpenAI completions and chunks. Formats:
 * ai.google.dev/api/generate-content, ai.google.dev/gemini-api/docs/function-calling,
 * ai.google.dev/gemini-api/docs/structured-output, ai.google.dev/gemini-api/docs/logprobs.
 *
 * What each OpenAI parameter that is not a message or a tool becomes (REFUSED,
 * IGNORED, generationConfig, logprobs, parallel_tool_calls): google-params.ts.
 */
import { chatCompletion } from "./completion";
import { randomUUID } from "node:crypto";
import { generationConfig, oneCallOnly, REFUSED, toLogprobs, type GeminiLogprobsResult } from "./google-params";
import type {
  OpenAIChatCompletion,
  OpenAIChoiceLogprobs,
  OpenAIChunk,
  OpenAIFinishReason,
  OpenAIMessage,
  OpenAITool,
  OpenAIToolCall,
  OpenAIToolChoice,
  OpenAIUsage,
  Provider,
} from "./types";
import { ProviderError, refuseParams } from "./types";

interface GeminiPart {
  text?: string;
  /** A thought summary (only with thinkingConfig.includeThoughts): not part of the answer. */
  thought?: boolean;
  inlineData?: { mimeType: string; data: string };
  fileData?: { mimeType: string; fileUri: string };
  functionCall?: { id?: string; name: string; args?: Record<string, unknown> };
  functionResponse?: { name: string; response: Record<string, unknown> };
}

interface GeminiContent {
  role: "user" | "model";
  parts: GeminiPart[];
}

interface GeminiUsage {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  thoughtsTokenCount?: number;
  totalTokenCount?: number;
}

interface GeminiCandidate {
  content?: { parts?: GeminiPart[] };
  finishReason?: string;
  /** Which candidate this is, with candidateCount > 1 (absent or 0 for the first). */
  index?: number;
  logprobsResult?: GeminiLogprobsResult;
}

interface GeminiResponse {
  candidates?: GeminiCandidate[];
  promptFeedback?: { blockReason?: string };
  usageMetadata?: GeminiUsage;
  error?: { code?: unknown; message?: unknown; status?: unknown };
}

type ChunkDelta = OpenAIChunk["choices"][number]["delta"];

const FILTERED = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"]);

/** File extensions whose MIME type is `image/<ext>` (jpg aside); unknown ones are sent as image/jpeg. */
const IMAGE_EXTENSIONS = new Set(["png", "jpeg", "webp", "heic", "heif", "gif"]);

/** JSON Schema keywords that Gemini's OpenAPI-style `parameters` schema rejects. */
const UNSUPPORTED_SCHEMA_KEYS = new Set(["$schema", "additionalProperties", "strict"]);

function textOf(content: OpenAIMessage["content"]): string {
  if (typeof content === "string") return content;
  return (content ?? []).map((p) => (p.type === "text" ? p.text : "")).join("");
}

/** The JSON object in `text`, or undefined when it is not one. */
function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return undefined;
}

function imagePart(url: string): GeminiPart {
  const m = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/s.exec(url);
  if (!m) {
    const ext = /\.([a-z0-9]+)$/i.exec(url.split(/[?#]/)[0])?.[1]?.toLowerCase() ?? "";
    return { fileData: { mimeType: IMAGE_EXTENSIONS.has(ext) ? `image/${ext}` : "image/jpeg", fileUri: url } };
  }
  if (m[2].split(";").includes("base64")) return { inlineData: { mimeType: m[1] || "image/jpeg", data: m[3] } };
  let raw = m[3];
  try {
    raw = decodeURIComponent(raw);
  } catch {
    // not percent-encoded: as it is
  }
  const data = Buffer.from(raw).toString("base64");
  return { inlineData: { mimeType: m[1] || "image/jpeg", data } };
}

function userParts(content: OpenAIMessage["content"]): GeminiPart[] {
  if (typeof content === "string") return content ? [{ text: content }] : [];
  return (content ?? [])
    .filter((p) => p.type !== "text" || p.text)
    .map((p) => (p.type === "text" ? { text: p.text } : imagePart(p.image_url.url)));
}

/** Gemini's `contents` and the system instruction's parts; consecutive same-role turns are merged. */
function toContents(messages: OpenAIMessage[]): { system: GeminiPart[]; contents: GeminiContent[] } {
  const system: GeminiPart[] = [];
  const contents: GeminiContent[] = [];
  // tool_call_id → function name, the latest call with that id winning
  const callNames = new Map<string, string>();
  const add = (role: GeminiContent["role"], parts: GeminiPart[]) => {
    if (!parts.length) return;
    const last = contents.at(-1);
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  for (const m of messages) {
    if (m.role === "system" || m.role === "developer") {
      const text = textOf(m.content);
      if (text) system.push({ text });
    } else if (m.role === "user") {
      add("user", userParts(m.content));
    } else if (m.role === "assistant") {
      const text = textOf(m.content);
      const parts: GeminiPart[] = text ? [{ text }] : [];
      for (const call of m.tool_calls ?? []) {
        callNames.set(call.id, call.function.name);
        parts.push({ functionCall: { name: call.function.name, args: parseObject(call.function.arguments) ?? {} } });
      }
      add("model", parts);
    } else if (m.role === "tool") {
      const text = textOf(m.content);
      const name = callNames.get(m.tool_call_id ?? "") ?? m.name ?? "unknown_function";
      add("user", [{ functionResponse: { name, response: parseObject(text) ?? { content: text } } }]);
    }
  }
  return { system, contents };
}

function cleanSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(cleanSchema);
  if (schema === null || typeof schema !== "object") return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (UNSUPPORTED_SCHEMA_KEYS.has(key)) continue;
    out[key] =
      key === "properties" && value !== null && typeof value === "object"
        ? Object.fromEntries(Object.entries(value).map(([prop, s]) => [prop, cleanSchema(s)]))
        : cleanSchema(value);
  }
  return out;
}

function declaration(tool: OpenAITool): Record<string, unknown> {
  const { name, description, parameters } = tool.function;
  const props = parameters?.properties;
  // Gemini refuses an OBJECT schema without properties: a function without parameters has none
  const empty = !parameters || (parameters.type === "object" && (!props || !Object.keys(props).length));
  return { name, ...(description ? { description } : {}), ...(empty ? {} : { parameters: cleanSchema(parameters) }) };
}

function toolConfig(choice: OpenAIToolChoice | null | undefined): Record<string, unknown> | undefined {
  if (choice == null) return undefined;
  if (typeof choice === "object")
    return { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [choice.function.name] } };
  return { functionCallingConfig: { mode: choice === "none" ? "NONE" : choice === "required" ? "ANY" : "AUTO" } };
}

function finishReason(reason: string | undefined, hasCalls: boolean): OpenAIFinishReason {
  if (reason === "MAX_TOKENS") return "length";
  if (reason && FILTERED.has(reason)) return "content_filter";
  return hasCalls ? "tool_calls" : "stop";
}

/** Thinking tokens are output tokens, as OpenAI counts reasoning tokens in completion_tokens. */
function toUsage(u: GeminiUsage | undefined): OpenAIUsage {
  const prompt = u?.promptTokenCount ?? 0;
  const completion = (u?.candidatesTokenCount ?? 0) + (u?.thoughtsTokenCount ?? 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: u?.totalTokenCount ?? prompt + completion,
  };
}

/** The answer's text (thought summaries left out) and its function calls. */
function readParts(parts: GeminiPart[]): { text: string; calls: OpenAIToolCall[] } {
  const text = parts.map((p) => (typeof p.text === "string" && !p.thought ? p.text : "")).join("");
  const calls = parts.flatMap((p): OpenAIToolCall[] =>
    p.functionCall
      ? [
          {
            id: p.functionCall.id || `call_${randomUUID().replace(/-/g, "").slice(0, 24)}`,
            type: "function",
            function: { name: p.functionCall.name, arguments: JSON.stringify(p.functionCall.args ?? {}) },
          },
        ]
      : [],
  );
  return { text, calls };
}

export const google: Provider = {
  name: "google",

  request(req, cfg) {
    refuseParams(req, "Google", REFUSED);
    const { system, contents } = toContents(req.messages);
    const body: Record<string, unknown> = { contents };
    if (system.length) body.systemInstruction = { parts: system };
    const generation = generationConfig(req);
    if (Object.keys(generation).length) body.generationConfig = generation;
    if (req.tools?.length) {
      body.tools = [{ functionDeclarations: req.tools.map(declaration) }];
      const config = toolConfig(req.tool_choice);
      if (config) body.toolConfig = config;
    }
    const model = encodeURIComponent(req.model.replace(/^models\//, ""));
    const method = req.stream ? "streamGenerateContent?alt=sse" : "generateContent";
    return {
      url: `${cfg.baseUrl.replace(/\/+$/, "")}/models/${model}:${method}`,
      // the key goes in a header, never in the URL (URLs end up in logs)
      headers: { "x-goog-api-key": cfg.apiKey, "content-type": "application/json" },
      body,
    };
  },

  response(body, meta, req): OpenAIChatCompletion {
    const r = (body ?? {}) as GeminiResponse;
    const usage = toUsage(r.usageMetadata);
    const candidates = r.candidates ?? [];
    // no candidate: a prompt Google blocked (or an empty answer)
    if (!candidates.length)
      return chatCompletion(meta, "", [], r.promptFeedback?.blockReason ? "content_filter" : "stop", usage);
    const out = chatCompletion(meta, "", [], "stop", usage);
    // one choice per candidate (candidateCount, OpenAI's n)
    out.choices = candidates
      .map((c, i) => {
        const { text, calls } = readParts(c.content?.parts ?? []);
        const kept = oneCallOnly(req) ? calls.slice(0, 1) : calls;
        const [choice] = chatCompletion(meta, text, kept, finishReason(c.finishReason, kept.length > 0), usage).choices;
        return { ...choice, index: c.index ?? i, logprobs: toLogprobs(c.logprobsResult) };
      })
      .sort((a, b) => a.index - b.index);
    return out;
  },

  stream(meta, req) {
    const oneCall = oneCallOnly(req);
    let usage: GeminiUsage | undefined;
    /** Per choice (candidate index): role sent, finish sent, tool calls sent. */
    const choices = new Map<number, { started: boolean; finished: boolean; calls: number }>();
    const state = (index: number) => {
      let s = choices.get(index);
      if (!s) choices.set(index, (s = { started: false, finished: false, calls: 0 }));
      return s;
    };
    const envelope = {
      id: meta.id,
      object: "chat.completion.chunk" as const,
      created: meta.created,
      model: meta.model,
    };
    const chunk = (
      index: number,
      delta: ChunkDelta,
      finish: OpenAIFinishReason | null = null,
      logprobs: OpenAIChoiceLogprobs | null = null,
    ): OpenAIChunk => {
      const s = state(index);
      const d: ChunkDelta = s.started ? delta : { role: "assistant", ...delta };
      s.started = true;
      return { ...envelope, choices: [{ index, delta: d, logprobs, finish_reason: finish }] };
    };
    const finish = (index: number, reason: OpenAIFinishReason): OpenAIChunk[] => {
      const s = state(index);
      if (s.finished) return [];
      s.finished = true;
      return [chunk(index, {}, reason)];
    };
    return {
      push(ev) {
        if (!ev.data.trim()) return [];
        let r: GeminiResponse;
        try {
          r = JSON.parse(ev.data) as GeminiResponse;
        } catch {
          throw new ProviderError(502, "sent a stream event that is not JSON.", "google");
        }
        if (r.error) {
          const status = typeof r.error.code === "number" ? r.error.code : 502;
          throw new ProviderError(
            status,
            typeof r.error.message === "string" ? r.error.message : "stream error",
            "google",
          );
        }
        if (r.usageMetadata) usage = r.usageMetadata;
        const candidates = r.candidates ?? [];
        if (!candidates.length) return r.promptFeedback?.blockReason ? finish(0, "content_filter") : [];
        const out: OpenAIChunk[] = [];
        candidates.forEach((candidate, i) => {
          const index = candidate.index ?? i;
          const s = state(index);
          const { text, calls } = readParts(candidate.content?.parts ?? []);
          const kept = oneCall ? calls.slice(0, Math.max(0, 1 - s.calls)) : calls;
          if (text || kept.length) {
            const delta: ChunkDelta = {};
            if (text) delta.content = text;
            if (kept.length) delta.tool_calls = kept.map((c) => ({ index: s.calls++, ...c }));
            out.push(chunk(index, delta, null, toLogprobs(candidate.logprobsResult)));
          }
          if (candidate.finishReason) out.push(...finish(index, finishReason(candidate.finishReason, s.calls > 0)));
        });
        return out;
      },
      end() {
        // a stream that ended without a finishReason still gets one
        if (!choices.size) state(0);
        const out = [...choices.entries()]
          .sort(([a], [b]) => a - b)
          .flatMap(([index, s]) => finish(index, s.calls > 0 ? "tool_calls" : "stop"));
        out.push({ ...envelope, choices: [], usage: toUsage(usage) });
        return out;
      },
    };
  },

  errorMessage(status, body) {
    const b: unknown = Array.isArray(body) ? body[0] : body;
    const m = (b as { error?: { message?: unknown } } | null)?.error?.message;
    if (typeof m === "string" && m.trim()) return m.trim();
    if (typeof body === "string" && body.trim()) {
      const title = /<title>([^<]*)<\/title>/i.exec(body)?.[1]?.trim();
      return (title || body.trim()).slice(0, 500);
    }
    return `Google answered ${status}.`;
  },

  /** A 429's wait is in `error.details[]`, the RetryInfo entry's `retryDelay` ("21s"), not in a header. */
  retryAfter(_status, body) {
    const details = (body as { error?: { details?: Array<{ "@type"?: string; retryDelay?: string }> } } | null)?.error
      ?.details;
    const delay = details?.find((d) => d["@type"]?.endsWith("RetryInfo"))?.retryDelay;
    const secs = delay ? Number.parseFloat(delay) : NaN;
    return Number.isFinite(secs) ? secs : null;
  },
};
