/**
 * OpenAI-shaped errors. Thrown anywhere in the cluster as MoleculerClientError /
 * MoleculerError (so they cross NATS intact: only `name`, `message`, `code`,
 * `type` and `data` travel), and turned into `{"error":{message,type,param,code}}`
 * with the right HTTP status at the edge.
 */
import { Errors } from "moleculer";

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

interface ErrorData {
  openaiType: string;
  param: string | null;
  /** Seconds, sent as `Retry-After` (429, 503). */
  retryAfter?: number;
  /** More headers of the answer (a 429's `x-ratelimit-*`). */
  headers?: Record<string, string>;
}

/** Creates an error that the api renders as an OpenAI error with `status`. */
export function apiError(
  status: number,
  message: string,
  code: string,
  opts: { param?: string | null; type?: string; retryAfter?: number; headers?: Record<string, string> } = {},
): Errors.MoleculerError {
  const type = opts.type ?? defaultType(status);
  const data: ErrorData = { openaiType: type, param: opts.param ?? null };
  if (opts.retryAfter !== undefined) data.retryAfter = opts.retryAfter;
  if (opts.headers) data.headers = opts.headers;
  return status < 500
    ? new Errors.MoleculerClientError(message, status, code, data)
    : new Errors.MoleculerError(message, status, code, data);
}

function defaultType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status < 500) return "invalid_request_error";
  if (status === 503) return "service_unavailable";
  return "server_error";
}

export const badRequest = (message: string, param: string | null = null, code = "invalid_request") =>
  apiError(400, message, code, { param });

export const modelNotFound = (model: string) =>
  apiError(404, `The model '${model}' does not exist or is not available on any node.`, "model_not_found", {
    param: "model",
  });

/** Moleculer's own errors, mapped to what a client should see. */
const MOLECULER_TYPES: Record<string, { status: number; code: string; message?: string }> = {
  REQUEST_TIMEOUT: { status: 504, code: "timeout", message: "The inference node did not answer in time." },
  REQUEST_REJECTED: { status: 503, code: "node_unavailable", message: "The inference node went away." },
  SERVICE_NOT_AVAILABLE: { status: 503, code: "service_unavailable", message: "The service is not available." },
  SERVICE_NOT_FOUND: { status: 503, code: "service_unavailable", message: "The service is not available." },
  VALIDATION_ERROR: { status: 400, code: "invalid_request" },
  // moleculer-web
  NOT_FOUND: { status: 404, code: "not_found", message: "Not found." },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, code: "unsupported_media_type" },
};

/** The NATS client's `code` when a message is larger than the server's max_payload. */
export const NATS_MAX_PAYLOAD = "MAX_PAYLOAD_EXCEEDED";

interface LooseError {
  message?: unknown;
  code?: unknown;
  type?: unknown;
  status?: unknown;
  data?: unknown;
}

/** Turns any error into an HTTP status and an OpenAI error body. Never throws. */
export function toOpenAIError(err: unknown): {
  status: number;
  body: OpenAIErrorBody;
  retryAfter?: number;
  headers?: Record<string, string>;
} {
  const e = (err ?? {}) as LooseError;
  const message = typeof e.message === "string" && e.message ? e.message : "Internal error";
  const data = (e.data ?? {}) as Partial<ErrorData>;

  // body-parser errors (malformed JSON, too large), as moleculer-web passes them on
  if (typeof e.type === "string" && e.type.startsWith("entity.")) {
    const status = typeof e.status === "number" ? e.status : typeof e.code === "number" ? e.code : 400;
    return status === 413
      ? build(413, "The request body is too large.", "invalid_request_error", null, "request_too_large")
      : build(400, `The request body is not valid JSON: ${message}`, "invalid_request_error", null, "invalid_json");
  }
  // body-parser's other client errors (an unknown Content-Encoding or charset: 415; a body that does
  // not inflate: 400), as http-errors marks them: never a 500 for what a client sent
  const expose = (e as { expose?: unknown }).expose === true;
  if (expose && typeof e.status === "number" && e.status >= 400 && e.status < 500) {
    const code = e.status === 415 ? "unsupported_media_type" : "invalid_body";
    return build(e.status, `The request body could not be read: ${message}`, "invalid_request_error", null, code);
  }
  if (data.openaiType && typeof e.code === "number") {
    const out = build(e.code, message, data.openaiType, data.param ?? null, typeof e.type === "string" ? e.type : null);
    return {
      ...out,
      ...(typeof data.retryAfter === "number" ? { retryAfter: data.retryAfter } : {}),
      ...(data.headers && typeof data.headers === "object" ? { headers: data.headers } : {}),
    };
  }
  // Moleculer's parameter validation: name the first bad field (never echo its value)
  if (e.type === "VALIDATION_ERROR" && Array.isArray(e.data) && e.data.length > 0) {
    const first = e.data[0] as { message?: unknown; field?: unknown };
    const field = typeof first.field === "string" ? first.field : null;
    const msg = typeof first.message === "string" ? first.message : message;
    return build(400, msg, "invalid_request_error", field, "invalid_value");
  }
  // the request is larger than one message of the transporter (NATS's max_payload, 1 MB by default):
  // the same on every node, so the client's to shorten
  if (e.code === NATS_MAX_PAYLOAD) {
    return build(
      413,
      "The request is too large to send to an inference node: one message between the router and its nodes holds at most the NATS server's max_payload (1 MB by default).",
      "invalid_request_error",
      null,
      "request_too_large",
    );
  }
  const known = typeof e.type === "string" ? MOLECULER_TYPES[e.type] : undefined;
  if (known) {
    return build(known.status, known.message ?? message, defaultType(known.status), null, known.code);
  }
  const status = typeof e.code === "number" && e.code >= 400 && e.code < 600 ? e.code : 500;
  return build(
    status,
    status === 500 ? "Internal error" : message,
    defaultType(status),
    null,
    typeof e.type === "string" ? e.type.toLowerCase() : null,
  );
}

function build(status: number, message: string, type: string, param: string | null, code: string | null) {
  return { status, body: { error: { message, type, param, code } } };
}

/** The headers an error's answer carries: `Retry-After` and any the error names. */
export function errorHeaders(e: { retryAfter?: number; headers?: Record<string, string> }): Record<string, string> {
  return { ...(e.headers ?? {}), ...(e.retryAfter ? { "Retry-After": String(e.retryAfter) } : {}) };
}
