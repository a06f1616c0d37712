/**
 * Talking to an external OpenAI-compatible runtime (llama.cpp server, vLLM,
 * Ollama's /v1, another router) over HTTP: model discovery, and chat,
 * completion and embedding calls whose streams come back as the same
 * object-mode chunk streams an inference node returns.
 */
import { Agent, errors as undiciErrors, type Dispatcher } from "undici";
import type { ChatJob, CompletionJob, EmbeddingJob, RerankJob } from "../inference/types";
import { parseKeepingText, toJson } from "../http/raw-json";
import { apiError } from "../openai/errors";
import { sseToChunks } from "./sse-chunks";
import { suggestV1, type RuntimeEndpoint } from "./runtime-url";
import type { AbortLike, Cancel } from "../upstreams/cancel";

export interface Runtime {
  id: string;
  baseUrl: string;
  apiKey?: string;
  /** API paths it lists as served (`/responses`: Responses requests are passed through). */
  endpoints?: RuntimeEndpoint[];
}

/** A runtime registered on the router (mixins/external-runtimes.mixin.ts keeps them). */
export interface ExternalRuntime extends Runtime {
  name: string;
  parallel: number;
  /** SHA-256 of the node token its agent sends with `POST /api/health`. */
  tokenHash?: string;
}

export type UpstreamKind = "chat" | "completion" | "embeddings" | "rerank" | "responses";

const PATHS: Record<UpstreamKind, string> = {
  chat: "/chat/completions",
  completion: "/completions",
  embeddings: "/embeddings",
  // llama.cpp's server (with --reranking), and Jina's and Cohere's shape of it
  rerank: "/rerank",
  responses: "/responses",
};

/** No byte from the runtime for this long (headers or body): the call fails (fetch's default was 300 s). */
const SOCKET_IDLE_MS = 300_000;

/**
 * undici's client with keep-alive pools per runtime, rather than fetch or
 * node:http: on the hot path fetch's WHATWG streams cost more CPU than the
 * proxying itself, and node:http's client about twice undici's per call
 * (bench/RESULTS.md, gateway overhead against peers).
 */
const AGENT = new Agent({
  connections: 1024,
  headersTimeout: SOCKET_IDLE_MS,
  bodyTimeout: SOCKET_IDLE_MS,
  keepAliveTimeout: 30_000,
});

interface Target {
  origin: string;
  prefix: string;
}

const targets = new Map<string, Target>();

/** The parsed base URL of a runtime, cached: runtimes are few and long-lived. */
function targetOf(rt: Runtime): Target {
  let t = targets.get(rt.baseUrl);
  if (!t) {
    const u = new URL(rt.baseUrl);
    t = { origin: u.origin, prefix: u.pathname.replace(/\/+$/, "") + u.search };
    if (targets.size > 1000) targets.clear();
    targets.set(rt.baseUrl, t);
  }
  return t;
}

/**
 * A failed call as an OpenAI error; the caller's own abort stays an AbortError
 * (a timeout signal is a failure). With `url` (a registration's probe) the
 * message names the URL tried and the error points at `base_url`.
 */
function unreachable(rt: Runtime, err: Error, signal?: { reason?: unknown }, url?: string): Error {
  const reason = signal?.reason as Error | undefined;
  if (err.name === "AbortError" && reason?.name !== "TimeoutError") return err;
  const why =
    reason?.name === "TimeoutError" ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError
      ? "it did not answer in time"
      : err.message;
  return url
    ? apiError(502, `Could not reach ${url}: ${why}`, "upstream_unreachable", { param: "base_url" })
    : apiError(502, `The runtime ${rt.id} could not be reached: ${why}`, "upstream_unreachable");
}

type Body = Dispatcher.ResponseData["body"];

/** One HTTP call; a 2xx response comes back unread, anything else as an OpenAI error. */
async function send(
  rt: Runtime,
  method: "GET" | "POST",
  path: string,
  body: string | null,
  signal: AbortSignal,
  probe?: string,
  traceparent?: string,
) {
  const t = targetOf(rt);
  const headers: Record<string, string> = { accept: "application/json, text/event-stream" };
  if (traceparent) headers.traceparent = traceparent;
  if (body !== null) headers["content-type"] = "application/json";
  if (rt.apiKey) headers.authorization = `Bearer ${rt.apiKey}`;
  const options = { origin: t.origin, path: t.prefix + path, method, headers, body, signal };
  try {
    return await AGENT.request(options);
  } catch (err) {
    // a kept-alive connection the runtime closed meanwhile: once more on a fresh one
    if (!(err instanceof undiciErrors.SocketError) || signal.aborted)
      throw unreachable(rt, err as Error, signal, probe);
    return AGENT.request(options).catch((e: Error) => {
      throw unreachable(rt, e, signal, probe);
    });
  }
}

async function request(
  rt: Runtime,
  method: "GET" | "POST",
  path: string,
  body: string | null,
  signal: AbortSignal,
  traceparent?: string,
) {
  const res = await send(rt, method, path, body, signal, undefined, traceparent);
  const status = res.statusCode;
  if (status >= 200 && status < 300) return res.body;
  throw answeredError(rt, status, await res.body.text().catch(() => ""));
}

/** A runtime's answer that is not 2xx, as an OpenAI error (its own message when it gave one). */
function answeredError(rt: Runtime, status: number, text: string): Error {
  let message = `The runtime ${rt.id} answered ${status}.`;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string };
    const m = typeof parsed.error === "string" ? parsed.error : parsed.error?.message;
    if (m) message = `${rt.id}: ${m}`;
  } catch {
    // not JSON: keep the status line
  }
  return apiError(status >= 400 && status < 600 ? status : 502, message, "upstream_error");
}

/**
 * One POST whose whole answer is read as text, on undici's dispatch API: no
 * response body stream and no promise chain to read it, about half the CPU
 * of `request()` and `body.text()` per call (bench/RESULTS.md, session 14).
 * A kept-alive connection the runtime closed meanwhile is tried once more.
 */
function postForText(
  rt: Runtime,
  path: string,
  body: string,
  signal: AbortLike,
  traceparent?: string,
): Promise<{ status: number; text: string }> {
  const t = targetOf(rt);
  const headers: Record<string, string> = { accept: "application/json", "content-type": "application/json" };
  if (traceparent) headers.traceparent = traceparent;
  if (rt.apiKey) headers.authorization = `Bearer ${rt.apiKey}`;
  const options = { origin: t.origin, path: t.prefix + path, method: "POST" as const, headers, body };
  return dispatchText(options, signal).catch((err: Error) => {
    if (!(err instanceof undiciErrors.SocketError) || signal.aborted) throw unreachable(rt, err, signal);
    return dispatchText(options, signal).catch((e: Error) => {
      throw unreachable(rt, e, signal);
    });
  });
}

function dispatchText(
  options: Dispatcher.DispatchOptions,
  signal: AbortLike,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    AGENT.dispatch(options, new TextCall(signal, resolve, reject));
  });
}

/**
 * The handler of one call on undici's dispatch API (undici 7's controller
 * API: `onRequestStart` selects it): collects the answer, aborts on
 * `signal`. Methods, not closures: tsx's esbuild names every closure
 * assigned to a name (`keepNames`), a property definition each, per call.
 */
class TextCall implements Dispatcher.DispatchHandler {
  private readonly chunks: Buffer[] = [];
  private status = 0;
  private control: Dispatcher.DispatchController | null = null;
  private readonly onAbort: () => void;

  constructor(
    private readonly signal: AbortLike,
    private readonly resolve: (answer: { status: number; text: string }) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.onAbort = this.abort.bind(this);
    signal.addEventListener("abort", this.onAbort, { once: true });
  }

  private abort(): void {
    this.control?.abort(this.signal.reason as Error);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.control = controller;
    if (this.signal.aborted) controller.abort(this.signal.reason as Error);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.signal.removeEventListener("abort", this.onAbort);
    this.resolve({ status: this.status, text: Buffer.concat(this.chunks).toString("utf8") });
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.signal.removeEventListener("abort", this.onAbort);
    this.reject(err);
  }
}

async function readJson(rt: Runtime, res: Body, signal: AbortSignal): Promise<unknown> {
  const text = await res.text().catch((err: Error) => {
    throw unreachable(rt, err, signal);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw apiError(502, `${rt.id} answered something that is not JSON.`, "upstream_error");
  }
}

/** The model ids the runtime lists at `GET /models`. */
export async function listModels(rt: Runtime, timeoutMs: number): Promise<string[]> {
  const signal = AbortSignal.timeout(timeoutMs);
  const res = await request(rt, "GET", "/models", null, signal);
  const body = (await readJson(rt, res, signal)) as { data?: Array<{ id?: unknown }> };
  if (!Array.isArray(body.data))
    throw apiError(502, `${rt.id}: /models did not answer an OpenAI model list.`, "upstream_error");
  return body.data.map((m) => m.id).filter((id): id is string => typeof id === "string");
}

/** The `error.message` of an OpenAI-shaped error body (or a plain `error` string), cut short; null when there is none. */
function upstreamMessage(text: string): string | null {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string };
    const m = typeof parsed.error === "string" ? parsed.error : parsed.error?.message;
    return typeof m === "string" && m ? (m.length > 300 ? `${m.slice(0, 300)}…` : m) : null;
  } catch {
    return null;
  }
}

/**
 * `GET {base_url}/models` when a runtime is registered: its model ids, or an
 * error that names the URL tried and what to fix. Not reached, or failing
 * itself (5xx): 502, as any call to a runtime. Answering, but not as an
 * OpenAI base URL would (404, another 4xx, not a model list): 422 on
 * `base_url`, suggesting the URL ending in `/v1`; refusing the key (401,
 * 403): 422 on `api_key` (a 401 would read as the client's own login failing).
 */
export async function probeModels(rt: Runtime, timeoutMs: number): Promise<string[]> {
  const t = targetOf(rt);
  const url = `${t.origin}${t.prefix}/models`;
  const signal = AbortSignal.timeout(timeoutMs);
  const res = await send(rt, "GET", "/models", null, signal, url);
  const text = await res.body.text().catch((err: Error) => {
    throw unreachable(rt, err, signal, url);
  });
  const status = res.statusCode;
  const said = upstreamMessage(text);
  const answered = `${url} answered ${status}${said ? ` (${said.replace(/\.$/, "")})` : ""}`;
  const v1 = suggestV1(rt.baseUrl);
  const notOpenAI = `base_url must be the runtime's OpenAI base URL, the one that usually ends in /v1${v1 ? `: try ${v1}` : ""}.`;
  if (status === 401 || status === 403) {
    throw apiError(422, `${answered}: the runtime refused the api_key.`, "upstream_unauthorized", {
      param: "api_key",
    });
  }
  if (status >= 500) throw apiError(502, `${answered}.`, "upstream_error", { param: "base_url" });
  if (status === 404) throw apiError(422, `${answered}. ${notOpenAI}`, "not_an_openai_base_url", { param: "base_url" });
  if (status < 200 || status >= 300) throw apiError(422, `${answered}.`, "upstream_error", { param: "base_url" });
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: said below
  }
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) {
    throw apiError(422, `${url} did not answer an OpenAI model list. ${notOpenAI}`, "not_an_openai_base_url", {
      param: "base_url",
    });
  }
  return data.map((m) => (m as { id?: unknown } | null)?.id).filter((id): id is string => typeof id === "string");
}

function upstreamBody(
  kind: UpstreamKind,
  job: ChatJob | CompletionJob | EmbeddingJob | RerankJob,
): Record<string, unknown> {
  if (kind === "embeddings") return { model: job.model, input: (job as EmbeddingJob).input };
  if (kind === "rerank") {
    const r = job as RerankJob;
    return { model: r.model, query: r.query, documents: r.documents };
  }
  const j = job as ChatJob | CompletionJob;
  return {
    model: j.model,
    ...("messages" in j ? { messages: j.messages } : { prompt: j.prompt }),
    max_tokens: j.maxTokens,
    temperature: j.temperature,
    top_p: j.topP,
    stop: j.stop.length ? j.stop : undefined,
    seed: j.seed,
    user: j.user,
    stream: j.stream,
    stream_options: j.stream && j.includeUsage ? { include_usage: true } : undefined,
  };
}

/**
 * Calls the runtime; a streamed job answers an object-mode stream of its
 * chunks. `body`, when given, is sent as it is (the client's own request;
 * a string is its JSON text); otherwise one is built from the job.
 */
export async function callUpstream(
  rt: Runtime,
  kind: UpstreamKind,
  job: ChatJob | CompletionJob | EmbeddingJob | RerankJob,
  /** Cancels the call (lib/upstreams/cancel.ts): a streamed one through the AbortSignal it makes. */
  cancel: Cancel,
  body?: Record<string, unknown> | string,
  /** The attempt's W3C trace context, sent on as `traceparent`. */
  traceparent?: string,
): Promise<unknown> {
  const streamed = kind !== "embeddings" && kind !== "rerank" && (job as ChatJob).stream;
  // the client's body as it came when nothing changed it (lib/http/raw-json.ts)
  const text = typeof body === "string" ? body : body ? toJson(body) : JSON.stringify(upstreamBody(kind, job));
  if (streamed) return sseToChunks(rt, await request(rt, "POST", PATHS[kind], text, cancel.signal, traceparent));
  const answer = await postForText(rt, PATHS[kind], text, cancel, traceparent);
  if (answer.status < 200 || answer.status >= 300) throw answeredError(rt, answer.status, answer.text);
  try {
    // a chat or completion answer goes to the client as the runtime wrote it unless something changes it
    return kind === "chat" || kind === "completion" ? parseKeepingText(answer.text) : JSON.parse(answer.text);
  } catch {
    throw apiError(502, `${rt.id} answered something that is not JSON.`, "upstream_error");
  }
}
