/**
 * Talking to an external OpenAI-compatible runtime (llama.cpp server, vLLM,
 * Ollama's /v1, another router) over HTTP: model discovery, and chat,
 * completion and embedding calls whose streams come back as the same
 * object-mode chunk streams an inference node returns.
 */
import { PassThrough, Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
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

function headers(rt: Runtime): Record<string, string> {
  const h: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  if (rt.apiKey) h.authorization = `Bearer ${rt.apiKey}`;
  return h;
}

function url(rt: Runtime, path: string): string {
  return `${rt.baseUrl.replace(/\/+$/, "")}${path}`;
}

async function request(rt: Runtime, path: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url(rt, path), { ...init, headers: headers(rt) });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw apiError(502, `The runtime ${rt.id} could not be reached: ${(err as Error).message}`, "upstream_unreachable");
  }
  if (res.ok) return res;
  const text = await res.text().catch(() => "");
  let message = `The runtime ${rt.id} answered ${res.status}.`;
  try {
    const body = JSON.parse(text) as { error?: { message?: string } | string };
    const m = typeof body.error === "string" ? body.error : body.error?.message;
    if (m) message = `${rt.id}: ${m}`;
  } catch {
    // not JSON: keep the status line
  }
  throw apiError(res.status >= 400 && res.status < 600 ? res.status : 502, message, "upstream_error");
}

/** The model ids the runtime lists at `GET /models`. */
export async function listModels(rt: Runtime, timeoutMs: number): Promise<string[]> {
  const res = await request(rt, "/models", { method: "GET", signal: AbortSignal.timeout(timeoutMs) });
  const body = (await res.json()) as { data?: Array<{ id?: unknown }> };
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

/** Calls the runtime; a streamed job answers an object-mode stream of its chunks. */
export async function callUpstream(
  rt: Runtime,
  kind: UpstreamKind,
  job: ChatJob | CompletionJob | EmbeddingJob,
  signal: AbortSignal,
): Promise<unknown> {
  const streamed = kind !== "embeddings" && (job as ChatJob).stream;
  const res = await request(rt, PATHS[kind], { method: "POST", body: JSON.stringify(upstreamBody(kind, job)), signal });
  if (!streamed) return res.json();
  return sseToChunks(rt, res.body as unknown as WebReadableStream<Uint8Array>);
}

function sseToChunks(rt: Runtime, body: WebReadableStream<Uint8Array>): Readable {
  const out = new PassThrough({ objectMode: true });
  const parser = createParser({
    onEvent(event) {
      if (event.data === "[DONE]") {
        out.end();
        return;
      }
      try {
        const chunk = JSON.parse(event.data) as { error?: { message?: string } };
        if (chunk.error)
          out.destroy(apiError(502, `${rt.id}: ${chunk.error.message ?? "stream error"}`, "upstream_error"));
        else out.write(chunk);
      } catch {
        out.destroy(apiError(502, `${rt.id} sent an event that is not JSON.`, "upstream_error"));
      }
    },
  });
  const source = Readable.fromWeb(body);
  source.setEncoding("utf8");
  source.on("data", (text: string) => parser.feed(text));
  source.on("end", () => {
    if (!out.writableEnded) out.end();
  });
  source.on("error", (err) => out.destroy(apiError(502, `${rt.id}: ${err.message}`, "upstream_error")));
  out.on("close", () => source.destroy());
  return out;
}
