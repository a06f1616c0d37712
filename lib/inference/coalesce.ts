/**
 * A stream's chunks in fewer transporter messages. Over NATS every item of a
 * node's object-mode stream is its own packet, serialised on the node and
 * parsed on the router; a token each made that the router's largest cost per
 * streamed token. A Coalescer sends the first chunk at once (time to first
 * token does not move), then gathers the chunks that follow for up to
 * `windowMs` or `maxChunks`, whichever comes first, and sends them as one item:
 * an array of chunks, which the router reads as its chunks again
 * (`flattenBatches`). A chunk itself is never an array.
 */
import type { Writable } from "node:stream";

export interface CoalesceOptions {
  /** How long a chunk may wait for others; 0: every chunk on its own, as before. */
  windowMs: number;
  /** A batch is sent at once when it holds this many. */
  maxChunks: number;
}

export class Coalescer {
  private batch: unknown[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sentFirst = false;

  constructor(
    private readonly out: Writable,
    private readonly opts: CoalesceOptions,
  ) {}

  push(chunk: unknown): void {
    if (this.out.destroyed) return; // the request was cancelled: nobody reads any more
    if (!this.sentFirst || this.opts.windowMs <= 0 || this.opts.maxChunks <= 1) {
      this.sentFirst = true;
      this.out.write(chunk);
      return;
    }
    this.batch.push(chunk);
    if (this.batch.length >= this.opts.maxChunks) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.opts.windowMs);
  }

  /** Sends what is gathered now. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.batch.length === 0 || this.out.destroyed) return;
    const batch = this.batch;
    this.batch = [];
    this.out.write(batch.length === 1 ? batch[0] : batch);
  }

  /** Sends what is gathered, then ends the stream. */
  end(): void {
    this.flush();
    this.out.end();
  }

  /** Sends what is gathered, then breaks the stream with `err`. */
  fail(err: Error): void {
    this.flush();
    this.out.destroy(err);
  }
}

/** What `ChunkIterator.readyNow` answers when no chunk is left of the batch being read. */
export const NOT_READY: unique symbol = Symbol("no chunk ready");

/** A stream's chunks, one `next()` each; `readyNow` takes the next one of the batch being read without a promise. */
export interface ChunkIterator extends AsyncIterator<unknown> {
  /** The next chunk when it is already here (the rest of a batch), else NOT_READY: then `next()` waits for one. */
  readyNow(): unknown;
}

/**
 * The chunks of a stream whose items may be batches (arrays of chunks): each
 * batch is read as its chunks, one `next()` each, without waiting on the
 * source between them; or all of its rest at once, by `readyNow` (the relay
 * writes the chunks of a batch in one write).
 */
export function flattenBatches(it: AsyncIterator<unknown>): ChunkIterator {
  let pending: unknown[] = [];
  let at = 0;
  // plain promises rather than an async function: one chunk a token passes here, on the relay's hot path
  const take = (r: IteratorResult<unknown>): IteratorResult<unknown> | Promise<IteratorResult<unknown>> => {
    if (r.done || !Array.isArray(r.value)) return r;
    pending = r.value;
    at = 0;
    return at < pending.length ? { done: false, value: pending[at++] } : it.next().then(take);
  };
  return {
    next(): Promise<IteratorResult<unknown>> {
      if (at < pending.length) return Promise.resolve({ done: false, value: pending[at++] });
      return it.next().then(take);
    },
    readyNow: () => (at < pending.length ? pending[at++] : NOT_READY),
    return: it.return ? (value?: unknown) => it.return!(value) : undefined,
    throw: it.throw ? (err?: unknown) => it.throw!(err) : undefined,
  };
}
