/**
 * Ollama's API in front (its own listener, LLM_ROUTER_OLLAMA_PORT): its
 * requests become the router's OpenAI requests, served by the same routing,
 * history, metrics and limits. What a request asks for is honoured or
 * refused with a 400 naming it. Format: github.com/ollama/ollama docs/api.md.
 *   /api/chat      → a chat completion (stream unless `stream: false`)
 *   /api/generate  → a chat completion of `system` + `prompt` (`raw`: a text completion)
 *   /api/embed     → embeddings of `input` (a text or a list)
 */
import { badRequest } from "../openai/errors";

type Json = Record<string, unknown>;

/**
 * Ollama's options and what each becomes. `num_ctx` and `keep_alive` are
 * settings of the node (its context size, LLM_NODE_MODEL_IDLE_SECS): taken
 * and left to it. Anything else (GPU layers, threads, mirostat…) is refused.
 */
const OPTION_MAP: Record<string, string | null> = {
  num_predict: "max_tokens",
  temperature: "temperature",
  top_p: "top_p",
  stop: "stop",
  seed: "seed",
  presence_penalty: "presence_penalty",
  frequency_penalty: "frequency_penalty",
  num_ctx: null,
};

const CHAT_FIELDS = new Set(["model", "messages", "tools", "format", "options", "stream", "keep_alive", "think"]);
const GENERATE_FIELDS = new Set([
  "model",
  "prompt",
  "system",
  "images",
  "format",
  "options",
  "stream",
  "raw",
  "keep_alive",
  "context",
  "think",
  "suffix",
  "template",
]);
const EMBED_FIELDS = new Set(["model", "input", "truncate", "options", "keep_alive", "dimensions", "prompt"]);

function object(raw: unknown): Json {
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    throw badRequest("The request body must be a JSON object.");
  return raw as Json;
}

function onlyFields(body: Json, allowed: Set<string>): void {
  for (const key of Object.keys(body)) {
    if (!allowed.has(key))
      throw badRequest(`Unknown field '${key.slice(0, 100)}'.`, key.slice(0, 100), "unknown_parameter");
  }
}

function modelOf(body: Json): string {
  if (typeof body.model !== "string" || !body.model) throw badRequest("model is required", "model");
  return body.model;
}

/** Ollama's `options` as OpenAI fields: each known one mapped, the rest refused naming it. */
export function mapOptions(raw: unknown): Json {
  if (raw === undefined || raw === null) return {};
  const options = object(raw);
  const out: Json = {};
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(OPTION_MAP, key)) {
      throw badRequest(
        `The option '${key.slice(0, 100)}' is not supported (supported: ${Object.keys(OPTION_MAP).join(", ")}).`,
        `options.${key.slice(0, 100)}`,
        "unsupported_parameter",
      );
    }
    const to = OPTION_MAP[key];
    if (to === null || value === null || value === undefined) continue;
    // num_predict -1 (unlimited) and -2 (fill the context): the node's own bound applies
    if (key === "num_predict" && typeof value === "number" && value < 0) continue;
    out[to] = value;
  }
  return out;
}

/** `format`: "json" (any JSON object) or a JSON schema the answer must follow. */
function responseFormat(format: unknown): Json | undefined {
  if (format === undefined || format === null || format === "") return undefined;
  if (format === "json") return { type: "json_object" };
  if (typeof format === "object" && !Array.isArray(format)) {
    return { type: "json_schema", json_schema: { name: "format", schema: format, strict: true } };
  }
  throw badRequest('format must be "json" or a JSON schema object.', "format", "invalid_value");
}

function thinkOff(body: Json): void {
  if (body.think !== undefined && body.think !== false) {
    throw badRequest(
      "think is not supported: the router's models answer without a separate reasoning trace.",
      "think",
      "unsupported_parameter",
    );
  }
}

function imageParts(images: unknown, param: string): Json[] {
  if (images === undefined || images === null) return [];
  if (!Array.isArray(images) || images.some((i) => typeof i !== "string")) {
    throw badRequest(`${param} must be a list of base64 images.`, param, "invalid_value");
  }
  return (images as string[]).map((data) => ({
    type: "image_url",
    image_url: { url: `data:image/png;base64,${data}` },
  }));
}

/**
 * Ollama's messages as OpenAI's: images become image parts; an assistant's
 * tool calls (arguments as objects, no ids) get ids, and each `tool` message
 * answers the next open call (of its `tool_name`, when it names one).
 */
export function mapMessages(raw: unknown): Json[] {
  if (!Array.isArray(raw) || raw.length === 0) throw badRequest("messages must be a non-empty list.", "messages");
  const open: Array<{ id: string; name: string }> = [];
  return raw.map((m, i) => {
    const param = `messages[${i}]`;
    const msg = object(m);
    const role = msg.role;
    if (role !== "system" && role !== "user" && role !== "assistant" && role !== "tool") {
      throw badRequest(`${param}.role must be system, user, assistant or tool.`, `${param}.role`, "invalid_value");
    }
    if (msg.content !== undefined && msg.content !== null && typeof msg.content !== "string") {
      throw badRequest(`${param}.content must be a string.`, `${param}.content`, "invalid_value");
    }
    const text = (msg.content as string | undefined) ?? "";
    const images = imageParts(msg.images, `${param}.images`);
    if (role === "tool") {
      const name = typeof msg.tool_name === "string" ? msg.tool_name : undefined;
      const at = open.findIndex((c) => name === undefined || c.name === name);
      if (at < 0)
        throw badRequest(`${param} answers no tool call of the assistant before it.`, param, "invalid_tool_call_id");
      const [call] = open.splice(at, 1);
      return { role: "tool", tool_call_id: call.id, content: text };
    }
    if (role === "assistant" && Array.isArray(msg.tool_calls) && msg.tool_calls.length) {
      const calls = msg.tool_calls.map((c, j) => {
        const fn = object(object(c).function);
        if (typeof fn.name !== "string") {
          throw badRequest(`${param}.tool_calls[${j}].function.name is required.`, `${param}.tool_calls[${j}]`);
        }
        const id = `call_${i}_${j}`;
        open.push({ id, name: fn.name });
        const args = typeof fn.arguments === "string" ? fn.arguments : JSON.stringify(fn.arguments ?? {});
        return { id, type: "function", function: { name: fn.name, arguments: args } };
      });
      return { role, content: text || null, tool_calls: calls };
    }
    if (images.length) return { role, content: [{ type: "text", text }, ...images] };
    return { role, content: text };
  });
}

export interface OllamaRequest {
  /** The OpenAI request it stands for. */
  body: Json;
  stream: boolean;
}

export function chatRequest(raw: unknown): OllamaRequest {
  const body = object(raw);
  onlyFields(body, CHAT_FIELDS);
  thinkOff(body);
  const stream = body.stream !== false;
  const out: Json = {
    model: modelOf(body),
    messages: mapMessages(body.messages),
    stream,
    ...mapOptions(body.options),
  };
  if (body.tools !== undefined && body.tools !== null) out.tools = body.tools;
  const format = responseFormat(body.format);
  if (format) out.response_format = format;
  return { body: out, stream };
}

/**
 * `/api/generate`: `raw` sends the prompt as it is (a text completion);
 * otherwise it is the user's turn of a chat after `system`. An empty prompt
 * only asks for the model to be ready (`load`).
 */
export function generateRequest(raw: unknown): OllamaRequest & { raw: boolean; load: boolean } {
  const body = object(raw);
  onlyFields(body, GENERATE_FIELDS);
  thinkOff(body);
  for (const field of ["suffix", "template"] as const) {
    if (body[field] !== undefined && body[field] !== null && body[field] !== "") {
      throw badRequest(
        `${field} is not supported: nodes use the model's own template.`,
        field,
        "unsupported_parameter",
      );
    }
  }
  if (Array.isArray(body.context) && body.context.length) {
    throw badRequest(
      "context (the token state of an earlier answer) is not supported: send the conversation to /api/chat.",
      "context",
      "unsupported_parameter",
    );
  }
  if (body.prompt !== undefined && typeof body.prompt !== "string")
    throw badRequest("prompt must be a string.", "prompt", "invalid_value");
  if (body.system !== undefined && typeof body.system !== "string")
    throw badRequest("system must be a string.", "system", "invalid_value");
  const prompt = (body.prompt as string | undefined) ?? "";
  const stream = body.stream !== false;
  const model = modelOf(body);
  const isRaw = body.raw === true;
  const options = mapOptions(body.options);
  const format = responseFormat(body.format);
  const images = imageParts(body.images, "images");
  const load = prompt === "" && images.length === 0;
  if (isRaw) {
    if (format) throw badRequest("format cannot be used with raw.", "format", "unsupported_parameter");
    // a text completion has no image parts: refused rather than dropped
    if (images.length) throw badRequest("images cannot be used with raw.", "images", "unsupported_parameter");
    return { body: { model, prompt, stream, ...options }, stream, raw: true, load };
  }
  const messages: Json[] = [];
  if (body.system) messages.push({ role: "system", content: body.system });
  messages.push({ role: "user", content: images.length ? [{ type: "text", text: prompt }, ...images] : prompt });
  const out: Json = { model, messages, stream, ...options };
  if (format) out.response_format = format;
  return { body: out, stream, raw: false, load };
}

/** `/api/embed` (`input`: a text or a list) and the older `/api/embeddings` (`prompt`: one text). */
export function embedRequest(raw: unknown, legacy = false): { body: Json; single: boolean } {
  const body = object(raw);
  onlyFields(body, EMBED_FIELDS);
  const model = modelOf(body);
  if (body.truncate === false) {
    throw badRequest(
      "truncate: false is not supported: an input longer than the context is refused either way.",
      "truncate",
      "unsupported_parameter",
    );
  }
  const extra = mapOptions(body.options);
  if (Object.keys(extra).length)
    throw badRequest("Embeddings take no generation options.", "options", "unsupported_parameter");
  const input = legacy ? body.prompt : body.input;
  const field = legacy ? "prompt" : "input";
  // the older endpoint answers one vector: its prompt is one text (a list would lose all but the first)
  const ok =
    typeof input === "string" ||
    (!legacy && Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === "string"));
  if (!ok) {
    const what = legacy ? "a text" : "a text or a non-empty list of texts";
    throw badRequest(`${field} must be ${what}.`, field, "invalid_value");
  }
  const out: Json = { model, input };
  if (body.dimensions !== undefined) out.dimensions = body.dimensions;
  return { body: out, single: typeof input === "string" };
}
