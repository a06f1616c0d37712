/** Small HTTP writers the api uses: JSON, OpenAI errors, and an SSE relay. */
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { toOpenAIError } from "../openai/errors";

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

/** Writes any error as an OpenAI error; returns the status sent. */
export function sendError(res: ServerResponse, err: unknown): number {
  const { status, body, retryAfter } = toOpenAIError(err);
  sendJson(res, status, body, retryAfter ? { "Retry-After": String(retryAfter) } : {});
  return status;
}

const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache",
  Connection: "keep-alive",
  "X-Accel-Buffering": "no",
};

export interface RelayResult {
  /** The client went away before the stream ended. */
  clientClosed: boolean;
  /** The error that broke the stream after it started, if any. */
  error?: unknown;
}

/**
 * Relays an object-mode stream of OpenAI chunks as Server-Sent Events ending
 * with `data: [DONE]`. Nothing is written until the first chunk arrives, so an
 * error before it rejects and the caller can still answer with a plain HTTP
 * error. A break after that ends the stream with an OpenAI error event.
 */
export async function relaySse(res: ServerResponse, source: Readable): Promise<RelayResult> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<unknown>;
  let next = await it.next();
  res.writeHead(200, SSE_HEADERS);
  try {
    while (!next.done) {
      if (res.destroyed) break;
      if (!res.write(`data: ${JSON.stringify(next.value)}\n\n`)) {
        await Promise.race([once(res, "drain"), once(res, "close")]);
      }
      next = await it.next();
    }
  } catch (err) {
    if (!res.destroyed) {
      res.write(`data: ${JSON.stringify(toOpenAIError(err).body)}\n\n`);
      res.end("data: [DONE]\n\n");
    }
    return { clientClosed: false, error: err };
  }
  if (res.destroyed) {
    await it.return?.();
    return { clientClosed: true };
  }
  res.end("data: [DONE]\n\n");
  return { clientClosed: false };
}
