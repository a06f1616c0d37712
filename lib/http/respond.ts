/** Small HTTP writers the api uses: JSON, OpenAI errors, and an SSE relay. */
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { apiError, errorHeaders, toOpenAIError } from "../openai/errors";
import { flattenBatches, NOT_READY, type ChunkIterator } from "../inference/coalesce";
import { toJson } from "./raw-json";

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  // an upstream's answer that nothing changed goes out as the text it came as
  const data = toJson(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

/** Writes any error as an OpenAI error; returns the status sent. */
export function sendError(res: ServerResponse, err: unknown): number {
  const e = toOpenAIError(err);
  sendJson(res, e.status, e.body, errorHeaders(e));
  return e.status;
}

const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache",
  "X-Accel-Buffering": "no",
};

export interface RelayResult {
  /** The client went away before the stream ended. */
  clientClosed: boolean;
  /** The error that broke the stream after it started, if any. */
  error?: unknown;
}

/** Where a relay's chunks come from: a Node stream (object mode), or a token lane's sink (lib/cluster/token-lanes.ts). */
export interface ChunkSource extends AsyncIterable<unknown> {
  destroy(err?: Error): void;
}

export interface OpenedStream {
  it: ChunkIterator;
  first: IteratorResult<unknown>;
  /** The stream `it` reads; given, the relay waits for chunks without a timer and a race per chunk. */
  source?: ChunkSource;
}

const idleError = (idleMs: number) =>
  apiError(504, `The node sent nothing for ${Math.round(idleMs / 1000)} s.`, "stream_idle_timeout");

/** The next item, or a 504 when none comes within `idleMs`. */
async function nextWithin(it: AsyncIterator<unknown>, idleMs: number): Promise<IteratorResult<unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(idleError(idleMs)), idleMs);
  });
  try {
    return await Promise.race([it.next(), idle]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for the first chunk of an object-mode stream. Until it arrives nothing
 * has been sent, so a failure here can still be retried elsewhere or answered
 * as a plain HTTP error.
 */
export async function openStream(source: ChunkSource, idleMs: number): Promise<OpenedStream> {
  // a node sends a stream's chunks in batches (lib/inference/coalesce.ts): read as the chunks they hold
  const own = source[Symbol.asyncIterator]() as AsyncIterator<unknown> & Partial<ChunkIterator>;
  // a source that reads its batches a chunk at a time itself (a lane's sink) needs no wrapper
  const it: ChunkIterator = typeof own.readyNow === "function" ? (own as ChunkIterator) : flattenBatches(own);
  try {
    return { it, first: await nextWithin(it, idleMs), source };
  } catch (err) {
    source.destroy();
    throw err;
  }
}

/**
 * Writes a streamed response's text. The first write goes through the
 * response (its headers leave with it); the later ones go straight to the
 * socket, framed as HTTP/1.1 chunks, one string and one syscall each. A write
 * through the response costs a cork, a tick and a `writev` of three buffers
 * (the chunk's length, the text, the CRLF): at 1,000 streams a bare Node SSE
 * server writing that way spent 15.2 µs a token, and 12.9 writing its framed
 * chunks to the socket (bench/RESULTS.md, session 18). Whenever the socket is
 * not the response's alone to write now (not chunked, as for an HTTP/1.0
 * client; data of the response still queued in it; no socket yet, as for a
 * pipelined response), the write goes through the response.
 */
export class ChunkWriter {
  private started = false;

  constructor(private readonly res: ServerResponse) {}

  /** Where a write that answered false drains. */
  get drains(): NodeJS.EventEmitter {
    return this.direct() ?? this.res;
  }

  /** Writes `text`; false when the client is behind (wait for `drains`' "drain"). */
  write(text: string): boolean {
    // an empty HTTP/1.1 chunk would end the body
    if (text === "") return true;
    const socket = this.direct();
    if (!socket) {
      this.started = true;
      return this.res.write(text);
    }
    return socket.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
  }

  /** The socket, when a chunk written to it now lands where the response would put it. */
  private direct() {
    const res = this.res;
    const socket = res.socket;
    if (!this.started || !socket || !res.chunkedEncoding || res.writableEnded) return null;
    // nothing of the response is waiting in it (its writableLength counts its own queue and its socket's)
    return res.writableLength === socket.writableLength ? socket : null;
  }
}

/** How a relay writes chunks in a client's event format. */
export interface SseFormat {
  /** The answer's headers when not SSE's (Ollama's NDJSON). */
  headers?: Record<string, string>;
  /** SSE text for one chunk ("" for none). */
  chunk(chunk: unknown): string;
  /**
   * Work before the last bytes of a complete stream go out (storing the
   * response the stream's last event carries, so it can be read back as soon
   * as the client has it).
   */
  settle?(): Promise<void>;
  /** SSE text that ends a complete stream. */
  end(): string;
  /** SSE text that ends a broken stream. */
  error(err: unknown): string;
}

/** OpenAI's: `data: <chunk>` events ending with `data: [DONE]`, an error as an error object event. */
export const openAISse: SseFormat = {
  chunk: (c) => `data: ${toJson(c)}\n\n`,
  end: () => "data: [DONE]\n\n",
  error: (err) => `data: ${JSON.stringify(toOpenAIError(err).body)}\n\ndata: [DONE]\n\n`,
};

/**
 * Relays an opened stream of OpenAI chunks as Server-Sent Events in `format`
 * (OpenAI's unless told). A break after the first chunk (node lost, idle too
 * long) ends the stream with an error event; it never hangs. The chunks of
 * one batch (a node's window of tokens, a runtime's read) leave in one write:
 * a burst of 255 tokens written one by one cost a third of the router's CPU.
 * Every write after the first goes straight to the socket as one HTTP/1.1
 * chunk (`ChunkWriter`).
 */
export async function relaySse(
  res: ServerResponse,
  { it, first, source }: OpenedStream,
  idleMs: number,
  /** Sees every chunk; a chunk it answers false for is not sent. */
  observe: (chunk: unknown) => boolean = () => true,
  format: SseFormat = openAISse,
): Promise<RelayResult> {
  let next = first;
  // one watchdog for the whole stream, pushed back at every chunk: it breaks the source, which ends the wait
  // (time spent waiting for a slow client to drain does not count, as with a timer per chunk)
  let draining = false;
  const watchdog = source
    ? setTimeout(() => (draining ? watchdog!.refresh() : source.destroy(idleError(idleMs))), idleMs)
    : undefined;
  const nextChunk = source ? () => (watchdog!.refresh(), it.next()) : () => nextWithin(it, idleMs);
  const out = new ChunkWriter(res);
  const textOf = (chunk: unknown) => (observe(chunk) ? format.chunk(chunk) : "");
  res.writeHead(200, format.headers ?? SSE_HEADERS);
  try {
    while (!next.done) {
      if (res.destroyed) break;
      let text = textOf(next.value);
      // the rest of its batch, into the same write
      for (let c = it.readyNow(); c !== NOT_READY; c = it.readyNow()) text += textOf(c);
      if (text) {
        if (!out.write(text)) {
          draining = true;
          await Promise.race([once(out.drains, "drain"), once(res, "close")]);
          draining = false;
        }
      }
      next = await nextChunk();
    }
  } catch (err) {
    clearTimeout(watchdog);
    await it.return?.().catch(() => undefined);
    if (!res.destroyed) res.end(format.error(err));
    return { clientClosed: false, error: err };
  }
  clearTimeout(watchdog);
  if (res.destroyed) {
    await it.return?.().catch(() => undefined);
    return { clientClosed: true };
  }
  if (format.settle) await format.settle();
  if (res.destroyed) return { clientClosed: true };
  res.end(format.end());
  return { clientClosed: false };
}
