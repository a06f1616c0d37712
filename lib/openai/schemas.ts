/**
 * Validation of OpenAI request bodies with zod. A failure becomes a 400 with
 * the offending field in `param` (e.g. `messages[0].content`).
 */
import { z } from "zod";
import { badRequest } from "./errors";
import { keepText, keptText } from "../http/raw-json";

/** Longest model id a request may name (any real one fits; a longer one never reaches a log, label or record). */
export const MAX_MODEL_CHARS = 256;
/** Longest `user` (OpenAI's end-user id). */
export const MAX_USER_CHARS = 256;

const modelName = z.string().min(1, "model must not be empty").max(MAX_MODEL_CHARS);
const endUser = z.string().max(MAX_USER_CHARS);

/** A content part: a text part's `text` is a string; other types (images…) are judged where they are served. */
const part = z.looseObject({ type: z.string().min(1).max(64), text: z.unknown().optional() }).superRefine((p, ctx) => {
  if (p.type === "text" && typeof p.text !== "string") {
    ctx.addIssue({ code: "custom", path: ["text"], message: "a text part's text must be a string" });
  }
});
const content = z.union([z.string(), z.array(part)]).nullable();

/** A function's name, as OpenAI allows it. */
const functionName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'");

/** A tool call an assistant made earlier in the conversation. */
const toolCall = z.looseObject({
  id: z.string().min(1).max(256),
  type: z.literal("function"),
  function: z.looseObject({ name: functionName, arguments: z.string().max(1_000_000) }),
});

/**
 * A message. Its content is required, except an assistant's (which may carry
 * only tool calls, or be an empty turn); a tool's answer names the call it answers.
 */
const message = z
  .looseObject({
    role: z.enum(["system", "developer", "user", "assistant", "tool"]),
    content: content.optional(),
    name: z.string().max(256).optional(),
    tool_calls: z.array(toolCall).max(128).nullable().optional(),
    tool_call_id: z.string().max(256).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.content == null && m.role !== "assistant") {
      ctx.addIssue({ code: "custom", path: ["content"], message: "content is required" });
    }
    if (m.role === "tool" && !m.tool_call_id) {
      ctx.addIssue({
        code: "custom",
        path: ["tool_call_id"],
        message: "a tool message needs the tool_call_id it answers",
      });
    }
    if (m.tool_calls && m.role !== "assistant") {
      ctx.addIssue({ code: "custom", path: ["tool_calls"], message: "only an assistant message carries tool_calls" });
    }
  });

const jsonSchemaObject = z.record(z.string(), z.unknown());

const tool = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: functionName,
    description: z.string().max(100_000).optional(),
    parameters: jsonSchemaObject.optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string().max(256) }) }),
]);

const responseFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    json_schema: z.looseObject({
      name: functionName,
      description: z.string().max(100_000).optional(),
      schema: jsonSchemaObject.optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
]);

const stop = z
  .union([z.string(), z.array(z.string()).max(4)])
  .nullable()
  .optional();

function common(maxTokensLimit: number) {
  return {
    model: modelName,
    max_tokens: z.number().int().min(1).max(maxTokensLimit).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().gt(0).max(1).nullable().optional(),
    stop,
    seed: z.number().int().nullable().optional(),
    frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
    presence_penalty: z.number().min(-2).max(2).nullable().optional(),
    logit_bias: z
      .record(z.string().regex(/^(0|[1-9][0-9]{0,9})$/, "keys are token ids"), z.number().min(-100).max(100))
      .refine((b) => Object.keys(b).length <= 1024, "at most 1024 tokens")
      .nullable()
      .optional(),
    stream: z.boolean().nullable().optional(),
    stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
    n: z.number().int().min(1).max(128).nullable().optional(),
    user: endUser.optional(),
    prompt_cache_key: z.string().max(MAX_USER_CHARS).nullable().optional(),
  };
}

export function chatSchema(maxTokensLimit: number) {
  return z.looseObject({
    ...common(maxTokensLimit),
    messages: z.array(message).min(1, "messages must contain at least one message"),
    max_completion_tokens: z.number().int().min(1).max(maxTokensLimit).nullable().optional(),
    tools: z.array(tool).max(128).nullable().optional(),
    tool_choice: toolChoice.nullable().optional(),
    parallel_tool_calls: z.boolean().nullable().optional(),
    response_format: responseFormat.nullable().optional(),
  });
}

export function completionSchema(maxTokensLimit: number) {
  return z.looseObject({
    ...common(maxTokensLimit),
    prompt: z.union([z.string(), z.array(z.string()).length(1, "only one prompt per request is supported")]),
  });
}

export const embeddingSchema = z.looseObject({
  model: modelName,
  // an empty text has no embedding (OpenAI refuses it too)
  input: z.union([
    z.string().min(1, "input must not be empty"),
    z.array(z.string().min(1, "input must not contain empty strings")).min(1).max(2048),
  ]),
  encoding_format: z.enum(["float", "base64"]).optional(),
  user: endUser.optional(),
});

/** Most documents one rerank request may score. */
export const MAX_RERANK_DOCUMENTS = 1000;

/**
 * `POST /v1/rerank`: the shape llama.cpp's server, Jina and Cohere share.
 * A document is a text, or `{text}`.
 */
export const rerankSchema = z.strictObject({
  model: modelName,
  query: z.string().min(1, "query must not be empty").max(100_000),
  documents: z
    .array(
      z.union([z.string(), z.looseObject({ text: z.string() })], {
        error: "each document is a text or {text}",
      }),
    )
    .min(1, "documents must not be empty")
    .max(MAX_RERANK_DOCUMENTS, `at most ${MAX_RERANK_DOCUMENTS} documents`),
  top_n: z.number().int().min(1).optional(),
  return_documents: z.boolean().optional(),
});

export type ChatBody = z.infer<ReturnType<typeof chatSchema>>;
export type CompletionBody = z.infer<ReturnType<typeof completionSchema>>;
export type EmbeddingBody = z.infer<typeof embeddingSchema>;
export type RerankBody = z.infer<typeof rerankSchema>;

function paramPath(path: PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

type Issue = z.core.$ZodIssue;

/** For a union, the branch's issue that says most (a wrong length beats a wrong type). */
function specific(issue: Issue): Issue {
  if (issue.code !== "invalid_union" || !("errors" in issue)) return issue;
  const inner = issue.errors.flat().find((i) => i.code !== "invalid_type");
  return inner ? { ...inner, path: [...issue.path, ...inner.path] } : issue;
}

function valueAt(body: unknown, path: PropertyKey[]): unknown {
  let v: unknown = body;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * `parseBody` for the chat and completion schemas, which check and change
 * nothing (loose objects, no defaults or transforms; tested): what they
 * answer says what the body said, so the text the body came as goes on with
 * it, and a runtime is sent the client's body as it came, not serialised
 * again (for a long conversation, its whole length).
 */
export function parseRequest<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const parsed = parseBody(schema, body);
  const text = keptText(body);
  if (text !== undefined) keepText(parsed, text);
  return parsed;
}

/** Parses `body` or throws a 400 naming the first bad field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest("The request body must be a JSON object.");
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = specific(result.error.issues[0]);
  // a field a strict schema does not take: named, as OpenAI names an unrecognized argument
  if (issue.code === "unrecognized_keys") {
    const key = paramPath([...issue.path, issue.keys[0]]);
    throw badRequest(`Unrecognized request argument supplied: ${key}`, key, "unsupported_parameter");
  }
  const param = paramPath(issue.path);
  const missing = issue.path.length > 0 && valueAt(body, issue.path) === undefined;
  const msg = missing ? `Missing required parameter: '${param}'.` : `Invalid '${param ?? "body"}': ${issue.message}.`;
  throw badRequest(msg, param, missing ? "missing_required_parameter" : "invalid_value");
}

/** Text of a message's content (text parts joined); other parts are not supported by local models. */
export function contentText(c: z.infer<typeof content> | undefined): string {
  if (c == null) return "";
  if (typeof c === "string") return c;
  return c.map((p) => (p.type === "text" && typeof p.text === "string" ? p.text : "")).join("");
}

export function stopList(s: string | string[] | null | undefined): string[] {
  if (s == null) return [];
  return (Array.isArray(s) ? s : [s]).filter((x) => x.length > 0);
}
