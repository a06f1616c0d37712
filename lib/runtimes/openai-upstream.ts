/**
 * Talking to an external OpenAI-compatible runtime (llama.cpp server, vLLM,
 * Ollama's /v1, another router) over HTTP: model discovery, and chat,
 * completion and embedding calls whose streams come back as the same
 * object-mode chunk streams an inference node returns.
 */
import http from "node:http";
import https from "node:https";
import { PassThrough, type Readable } from "node:stream";
import { createParser } from "eventsource-parser";
import type { ChatJob, CompletionJob, EmbeddingJob } from "../inference/types";
import { apiError } from "../openai/errors";

export interface Runtime {
  id: string;
  baseUrl: string;
  apiKey?: string;
}

export type UpstreamKind = "chat" | "completion" | "embeddings";

const PATHS: Record<UpstreamKind, string> = {
  chat: "/chat/completions",
  completion: "/completions",
  embeddings: "/embeddings",
};

/**
 * node:http with keep-alive pools rather than fetch: on the hot path fetch's
 * WHATWG streams and per-request objects cost more CPU than the proxying
 * itself (bench/RESULTS.md, gateway overhead against peers).
 */
const AGENTS = {
  "http:": new http.Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, scheduling: "lifo" }),
  "https:": new https.Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, scheduling: "lifo" }),
};
/** No byte from the runtime for this long (headers or body): the call fails (fetch's default was 300 s). */
const SOCKET_IDLE_MS = 300_000;

interface Target {
  mod: typeof http | typeof https;
  agent: http.Agent;
  hostname: string;
  port: string;
  prefix: string;
}

const targets = new Map<string, Target>();

/** The parsed base URL of a runtime, cached: runtimes are few and long-lived. */
function targetOf(rt: Runtime): Target {
  let t = targets.get(rt.baseUrl);
  if (!t) {
    const u = new URL(rt.baseUrl);
    const https_ = u.protocol === "https:";
    t = {
      mod: https_ ? https : http,
      agent: AGENTS[https_ ? "https:" : "http:"],
      hostname: u.hostname.replace(/^\[|\]$/g, ""),
      port: u.port,
      prefix: u.pathname.replace(/\/+$/, "") + u.search,
    };
    if (targets.size > 1000) targets.clear();
    targets.set(rt.baseUrl, t);
  }
  return t;
}

/** A failed call as an OpenAI error; the caller's own abort stays an AbortError (a timeout signal is a failure). */
function unreachable(rt: Runtime, err: Error, signal?: AbortSignal): Error {
  const reason = signal?.reason as Error | undefined;
  if (err.name === "AbortError" && reason?.name !== "TimeoutError") return err;
  const why = reason?.name === "TimeoutError" ? "it did not answer in time" : err.message;
  return apiError(502, `The runtime ${rt.id} could not be reached: ${why}`, "upstream_unreachable");
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.on("data", (b: Buffer) => parts.push(b));
    res.once("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    res.once("error", reject);
    res.once("aborted", () => reject(new Error("the answer was cut off")));
  });
}

/** One HTTP call; a 2xx response comes back unread, anything else as an OpenAI error. */
function send(rt: Runtime, method: string, path: string, body: string | null, signal: AbortSignal, retry = true) {
  const t = targetOf(rt);
  const headers: Record<string, string | number> = { accept: "application/json, text/event-stream" };
  if (body !== null) {
    headers["content-type"] = "application/json";
    headers["content-length"] = Buffer.byteLength(body);
  }
  if (rt.apiKey) headers.authorization = `Bearer ${rt.apiKey}`;
  return new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = t.mod.request(
      { method, hostname: t.hostname, port: t.port, path: t.prefix + path, headers, agent: t.agent, signal },
      resolve,
    );
    req.setTimeout(SOCKET_IDLE_MS, () => req.destroy(new Error(`no answer for ${SOCKET_IDLE_MS / 1000} s`)));
    req.once("error", (err: Error & { code?: string }) => {
      // a kept-alive connection the runtime closed meanwhile: once more on a fresh one
      if (retry && req.reusedSocket && err.code === "ECONNRESET" && !signal.aborted) {
        send(rt, method, path, body, signal, false).then(resolve, reject);
      } else reject(unreachable(rt, err, signal));
    });
    req.end(body ?? undefined);
  });
}

async function request(rt: Runtime, method: string, path: string, body: string | null, signal: AbortSignal) {
  const res = await send(rt, method, path, body, signal);
  const status = res.statusCode ?? 502;
  if (status >= 200 && status < 300) return res;
  const text = await readAll(res).catch(() => "");
  let message = `The runtime ${rt.id} answered ${status}.`;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string };
    const m = typeof parsed.error === "string" ? parsed.error : parsed.error?.message;
    if (m) message = `${rt.id}: ${m}`;
  } catch {
    // not JSON: keep the status line
  }
  throw apiError(status >= 400 && status < 600 ? status : 502, message, "upstream_error");
}

async function readJson(rt: Runtime, res: http.IncomingMessage, signal: AbortSignal): Promise<unknown> {
  const text = await readAll(res).catch((err: Error) => {
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

function upstreamBody(kind: UpstreamKind, job: ChatJob | CompletionJob | EmbeddingJob): Record<string, unknown> {
  if (kind === "embeddings") return { model: job.model, input: (job as EmbeddingJob).input };
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
 * chunks. `body`, when given, is sent as it is (the client's own request);
 * otherwise one is built from the job.
 */
export async function callUpstream(
  rt: Runtime,
  kind: UpstreamKind,
  job: ChatJob | CompletionJob | EmbeddingJob,
  signal: AbortSignal,
  body?: Record<string, unknown>,
): Promise<unknown> {
  const streamed = kind !== "embeddings" && (job as ChatJob).stream;
  const res = await request(rt, "POST", PATHS[kind], JSON.stringify(body ?? upstreamBody(kind, job)), signal);
  if (!streamed) return readJson(rt, res, signal);
  return sseToChunks(rt, res);
}

/**
 * The first events of a stream go on as soon as they are parsed; the rest of
 * the read they came in waits for the next turn of the event loop. A runtime
 * that sends its whole answer in one read would otherwise have every event of
 * it parsed before the client sees the first token.
 */
const EARLY_EVENTS = 2;

function sseToChunks(rt: Runtime, res: http.IncomingMessage): Readable {
  const out = new PassThrough({ objectMode: true });
  const take = (data: string) => {
    if (out.destroyed || out.writableEnded) return;
    if (data === "[DONE]") {
      out.end();
      return;
    }
    try {
      const chunk = JSON.parse(data) as { error?: { message?: string } };
      if (chunk.error)
        out.destroy(apiError(502, `${rt.id}: ${chunk.error.message ?? "stream error"}`, "upstream_error"));
      else if (!out.write(chunk)) res.pause();
    } catch {
      out.destroy(apiError(502, `${rt.id} sent an event that is not JSON.`, "upstream_error"));
    }
  };
  let early = EARLY_EVENTS;
  /** The early events are taken: the rest of this read waits. */
  let deferRest = false;
  let later: string[] = [];
  let scheduled: NodeJS.Immediate | null = null;
  const takeLater = () => {
    scheduled = null;
    const batch = later;
    later = [];
    for (const data of batch) take(data);
  };
  const parser = createParser({
    onEvent(event) {
      if (later.length === 0 && !deferRest) {
        take(event.data);
        if (early > 0 && --early === 0) deferRest = true;
        return;
      }
      later.push(event.data);
      scheduled ??= setImmediate(takeLater);
    },
  });
  res.setEncoding("utf8");
  res.on("data", (text: string) => {
    deferRest = false;
    parser.feed(text);
  });
  res.on("end", () => {
    if (scheduled) {
      clearImmediate(scheduled);
      takeLater();
    }
    if (!out.writableEnded) out.end();
  });
  const broken = (err?: Error) =>
    out.destroy(apiError(502, `${rt.id}: ${err?.message ?? "the stream was cut off"}`, "upstream_error"));
  res.on("error", broken);
  res.on("aborted", () => broken());
  out.on("drain", () => res.resume());
  out.on("close", () => {
    // ended by [DONE]: read what is left so the connection goes back to the pool; abandoned: close it
    if (out.readableEnded) res.resume();
    else res.destroy();
  });
  return out;
}
