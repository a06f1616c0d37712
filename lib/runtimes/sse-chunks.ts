/**
 * A runtime's SSE answer as an object-mode stream of its chunks (split out of
 * lib/runtimes/openai-upstream.ts): the events of a read go on as one batch,
 * each chunk with the text it came as, the first events before the rest of
 * their read is parsed.
 */
import { PassThrough, type Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { createParser } from "eventsource-parser";
import type { Dispatcher } from "undici";
import { parseKeepingText } from "../http/raw-json";
import { apiError } from "../openai/errors";

type Body = Dispatcher.ResponseData["body"];

/**
 * The first events of a stream go on as soon as they are parsed; what comes
 * with or after them in the same turn is not even parsed before the next
 * turn of the event loop. A runtime that sends its whole answer in one read
 * would otherwise have every event of it parsed before the client sees the
 * first token.
 */
const EARLY_EVENTS = 2;

/** What `[DONE]` parses to. */
const DONE = Symbol("[DONE]");

/** SSE's end of an event: a blank line, in any of its line endings. */
const EVENT_END = /\r\n\r\n|\n\n|\r\r/g;

/** Where the `n`th event of `text` ends (just after its blank line), or -1 when it holds fewer. */
export function afterEvents(text: string, n: number): number {
  EVENT_END.lastIndex = 0;
  for (let i = 0; i < n; i++) if (!EVENT_END.exec(text)) return -1;
  return EVENT_END.lastIndex;
}

/**
 * A runtime's event stream as an object-mode stream of its chunks. The events
 * of one read go on together, as one batch (an array: lib/http/respond.ts
 * reads batches, and writes what is ready in one write), each chunk with the
 * text it came as (lib/http/raw-json.ts).
 */
export function sseToChunks(rt: { id: string }, res: Body): Readable {
  const out = new PassThrough({ objectMode: true });
  /** The chunk an event carries, DONE for `[DONE]`, null for a broken event (the stream is then destroyed). */
  const parse = (data: string): unknown => {
    if (out.destroyed || out.writableEnded) return null;
    if (data === "[DONE]") return DONE;
    try {
      // kept with its text: relayed unchanged, it is not serialised again
      const chunk = parseKeepingText(data) as { error?: { message?: string } };
      if (!chunk || typeof chunk !== "object") throw new Error("not an object");
      if (!chunk.error) return chunk;
      out.destroy(apiError(502, `${rt.id}: ${chunk.error.message ?? "stream error"}`, "upstream_error"));
    } catch {
      out.destroy(apiError(502, `${rt.id} sent an event that is not JSON.`, "upstream_error"));
    }
    return null;
  };
  let events: string[] = [];
  let seen = 0;
  const parser = createParser({
    onEvent(event) {
      events.push(event.data);
      seen++;
    },
  });
  /** The events parsed so far go on: one chunk, or a batch of them; `[DONE]` ends the stream. */
  const flush = () => {
    if (!events.length) return;
    const batch: unknown[] = [];
    let done = false;
    for (const data of events) {
      const chunk = parse(data);
      if (chunk === null || (done = chunk === DONE)) break;
      batch.push(chunk);
    }
    events = [];
    if (batch.length && !out.destroyed && !out.writableEnded && !out.write(batch.length === 1 ? batch[0] : batch))
      res.pause();
    if (done && !out.writableEnded) out.end();
  };
  const feed = (text: string) => {
    parser.feed(text);
    flush();
  };
  /**
   * Text not parsed yet: parsed together on the next turn of the event loop.
   * A runtime writes each event as its own HTTP chunk, and the body gives one
   * `data` per chunk, all in the same turn for a burst read at once: they
   * are parsed as one text and go on as one batch (one write to the client).
   * The first events are parsed at once (time to first token).
   */
  let deferred = "";
  let scheduled: NodeJS.Immediate | null = null;
  const feedDeferred = () => {
    scheduled = null;
    const text = deferred;
    deferred = "";
    feed(text);
  };
  // undici's body gives Buffers whatever its encoding is set to; a decoder keeps characters split across reads whole
  const utf8 = new StringDecoder("utf8");
  res.on("data", (bytes: Buffer) => {
    const text = utf8.write(bytes);
    if (scheduled) {
      deferred += text;
      return;
    }
    if (seen < EARLY_EVENTS) {
      const cut = afterEvents(text, EARLY_EVENTS - seen);
      if (cut < 0 || cut >= text.length) return feed(text);
      feed(text.slice(0, cut));
      deferred = text.slice(cut);
    } else deferred = text;
    scheduled = setImmediate(feedDeferred);
  });
  res.on("end", () => {
    if (scheduled) {
      clearImmediate(scheduled);
      feedDeferred();
    }
    if (!out.writableEnded) out.end();
  });
  const broken = (err?: Error) =>
    out.destroy(apiError(502, `${rt.id}: ${err?.message ?? "the stream was cut off"}`, "upstream_error"));
  res.on("error", broken);
  out.on("drain", () => res.resume());
  out.on("close", () => {
    // ended by [DONE]: read what is left so the connection goes back to the pool; abandoned: close it
    if (out.readableEnded) res.resume();
    else res.destroy();
  });
  return out;
}
