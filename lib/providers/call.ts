/**
 * One cloud call: the provider module builds the request and translates the
 * answer; this file does the HTTP, one attempt (the request path retries
 * 429, 5xx and lost connections before anything reached the client, by the
 * one policy in lib/routing/retry.ts, waiting out the provider's Retry-After
 * that this call reads). Streams come back as object-mode streams of OpenAI
 * chunks (the same as an inference node returns), and closing one aborts the
 * upstream request.
 */
import { PassThrough, Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { createParser } from "eventsource-parser";
import { apiError } from "../openai/errors";
import type { OpenAIChatCompletion, OpenAIChatRequest, Provider, ProviderConfig, ResponseMeta } from "./types";
import { ProviderError } from "./types";

export interface CallOptions {
  /** Limit for a whole plain answer, or until a stream's headers. */
  timeoutMs: number;
  /** The client went away. */
  signal: AbortSignal;
  /** The upstream's answer (or lost connection, status 0) with its latency. */
  onAttempt?: (status: number, latencyMs: number) => void;
  /** The request's W3C trace context, sent to the provider as `traceparent`. */
  traceparent?: string;
}

function retryAfterSecs(res: Response): number | null {
  const raw = res.headers.get("retry-after");
  if (!raw) return null;
  const secs = Number(raw);
  if (Number.isFinite(secs)) return Math.max(0, secs);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

function upstreamError(p: Provider, status: number, body: unknown, retryAfter: number | null): Error {
  const code = status === 429 ? "rate_limit_exceeded" : "upstream_error";
  const httpStatus = status >= 400 && status < 600 ? status : 502;
  return apiError(httpStatus, `${p.name}: ${p.errorMessage(status, body)}`, code, {
    retryAfter: retryAfter === null ? undefined : Math.ceil(retryAfter),
  });
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text().catch(() => "");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function callProvider(
  p: Provider,
  cfg: ProviderConfig,
  req: OpenAIChatRequest,
  meta: ResponseMeta,
  opts: CallOptions,
): Promise<OpenAIChatCompletion | Readable> {
  const upstream = p.request(req, cfg);
  const ac = new AbortController();
  const abort = () => ac.abort(opts.signal.reason);
  opts.signal.addEventListener("abort", abort, { once: true });
  const timer = setTimeout(
    () => ac.abort(apiError(504, `${p.name} did not answer within ${opts.timeoutMs} ms.`, "upstream_timeout")),
    opts.timeoutMs,
  );
  const done = () => {
    clearTimeout(timer);
    opts.signal.removeEventListener("abort", abort);
  };
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(upstream.url, {
      method: "POST",
      headers: {
        accept: req.stream ? "text/event-stream" : "application/json",
        ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
        ...upstream.headers,
      },
      body: JSON.stringify(upstream.body),
      signal: ac.signal,
    });
  } catch (err) {
    done();
    opts.onAttempt?.(0, performance.now() - started);
    if (opts.signal.aborted) throw err;
    if (ac.signal.reason instanceof Error && (ac.signal.reason as { code?: number }).code === 504) {
      throw ac.signal.reason;
    }
    throw apiError(502, `${p.name} could not be reached: ${(err as Error).message}`, "upstream_unreachable");
  }
  opts.onAttempt?.(res.status, performance.now() - started);
  if (!res.ok) {
    done();
    const body = await readBody(res);
    const after = retryAfterSecs(res) ?? p.retryAfter?.(res.status, body) ?? null;
    throw upstreamError(p, res.status, body, after);
  }
  if (!req.stream) {
    try {
      const body = (await res.json()) as unknown;
      return p.response(body, meta, req);
    } catch (err) {
      if (opts.signal.aborted || ac.signal.aborted) throw ac.signal.reason ?? err;
      throw apiError(
        502,
        `${p.name} sent an answer that could not be read: ${(err as Error).message}`,
        "upstream_error",
      );
    } finally {
      done();
    }
  }
  clearTimeout(timer);
  return translateStream(p, res.body as unknown as WebReadableStream<Uint8Array>, meta, req, () => {
    opts.signal.removeEventListener("abort", abort);
    ac.abort();
  });
}

function translateStream(
  p: Provider,
  body: WebReadableStream<Uint8Array>,
  meta: ResponseMeta,
  req: OpenAIChatRequest,
  closeUpstream: () => void,
): Readable {
  const out = new PassThrough({ objectMode: true });
  const translator = p.stream(meta, req);
  const fail = (err: unknown) => {
    const e =
      err instanceof ProviderError
        ? apiError(
            err.status >= 400 && err.status < 600 ? err.status : 502,
            `${p.name}: ${err.message}`,
            "upstream_error",
          )
        : apiError(502, `${p.name} stream could not be read: ${(err as Error).message}`, "upstream_error");
    out.destroy(e);
  };
  const parser = createParser({
    onEvent(ev) {
      try {
        for (const chunk of translator.push({ event: ev.event, data: ev.data })) out.write(chunk);
      } catch (err) {
        fail(err);
      }
    },
  });
  const source = Readable.fromWeb(body);
  source.setEncoding("utf8");
  source.on("data", (text: string) => parser.feed(text));
  source.on("end", () => {
    if (out.destroyed) return;
    try {
      for (const chunk of translator.end()) out.write(chunk);
      out.end();
    } catch (err) {
      fail(err);
    }
  });
  source.on("error", (err) => {
    if (!out.destroyed) fail(err);
  });
  // the client went away (or the relay gave up): stop the upstream request too
  out.on("close", () => {
    source.destroy();
    closeUpstream();
  });
  return out;
}
