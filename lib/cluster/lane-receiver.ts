/**
 * The router's side of the token lanes (lib/cluster/token-lanes.ts): a sink
 * for each stream its api has open over a lane, fed from the lane messages
 * its nodes send it.
 */
import { NOT_READY, type ChunkIterator } from "../inference/coalesce";
import { apiError } from "../openai/errors";
import { TokenUnpacker } from "./lane-tokens";
import type { LaneEntry } from "./token-lanes";

/**
 * A lane stream at the router: the chunks a lane delivered for one request,
 * read by the relay as an async iterator of chunks (a batch is read a chunk
 * at a time; the rest of it by `readyNow`, with no promise). A queue rather than a Node stream:
 * no stream machinery per chunk (a PassThrough and its iterator cost more per
 * chunk than the rest of the relay, bench/RESULTS.md session 14).
 */
export class LaneSink implements ChunkIterator, AsyncIterableIterator<unknown> {
  private queue: unknown[] = [];
  private head = 0;
  private waiter: { resolve(r: IteratorResult<unknown>): void; reject(err: unknown): void } | null = null;
  private ended = false;
  /** The node's error, thrown once the chunks before it have been read. */
  private failure: Error | null = null;
  destroyed = false;

  constructor(private readonly onClose: () => void = () => undefined) {}

  /** A chunk, or a batch of them (an array): read one chunk at a time (it is its own ChunkIterator). */
  push(item: unknown): void {
    if (this.destroyed || this.ended) return;
    const chunks = Array.isArray(item) ? item : [item];
    let i = 0;
    if (this.waiter && chunks.length > 0) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ done: false, value: chunks[i++] });
    }
    for (; i < chunks.length; i++) this.queue.push(chunks[i]);
  }

  /** The next chunk when one is queued, without a promise; else NOT_READY. */
  readyNow(): unknown {
    if (this.head >= this.queue.length) return NOT_READY;
    const value = this.queue[this.head];
    this.queue[this.head++] = undefined;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return value;
  }

  /** The stream is complete: the reader gets what is queued, then the end. */
  end(): void {
    if (this.destroyed || this.ended) return;
    this.ended = true;
    this.settle();
  }

  /** The stream broke at the node: the reader gets what is queued, then `err`. */
  fail(err: Error): void {
    if (this.destroyed || this.ended) return;
    this.ended = true;
    this.failure = err;
    this.settle();
  }

  /** Stops at once (the relay gave up, the node left): what is queued is dropped; a reader waiting gets `err` or the end. */
  destroy(err?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.queue = [];
    this.head = 0;
    if (err) this.failure = err;
    this.settle();
    this.onClose();
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.head < this.queue.length) return Promise.resolve({ done: false, value: this.readyNow() });
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended || this.destroyed) {
      if (!this.destroyed) this.destroy();
      return Promise.resolve({ done: true, value: undefined });
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** The reader stopped early. */
  return(): Promise<IteratorResult<unknown>> {
    this.destroy();
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** A reader waiting while nothing is queued learns of the end or the failure now. */
  private settle(): void {
    if (!this.waiter || this.head < this.queue.length) return;
    const w = this.waiter;
    this.waiter = null;
    if (this.failure) w.reject(this.failure);
    else w.resolve({ done: true, value: undefined });
  }
}

/** The router's side: the sinks of the streams its api has open over lanes. */
export class LaneReceiver {
  private readonly sinks = new Map<string, { sink: LaneSink; nodeID: string; tokens: TokenUnpacker }>();

  constructor(
    /** Rebuilds a node's error from its plain form (Moleculer's error regenerator). */
    private readonly restore: (plain: Record<string, unknown>, nodeID: string) => Error,
  ) {}

  /** The sink of `requestId`'s stream from `nodeID`, open before the node is called. */
  open(requestId: string, nodeID: string): LaneSink {
    const sink: LaneSink = new LaneSink(() => {
      if (this.sinks.get(requestId)?.sink === sink) this.sinks.delete(requestId);
    });
    this.sinks.set(requestId, { sink, nodeID, tokens: new TokenUnpacker() });
    return sink;
  }

  /** The call did not become a lane stream (it failed, or the node sent its own stream). */
  drop(requestId: string): void {
    this.sinks.get(requestId)?.sink.destroy();
  }

  /** A lane message from `nodeID`: each entry to its stream (a node writes only to its own streams). */
  deliver(nodeID: string, entries: LaneEntry[]): void {
    if (!Array.isArray(entries)) return;
    for (const entry of entries) {
      if (!Array.isArray(entry)) continue;
      const [requestId, chunks, end] = entry;
      const s = this.sinks.get(requestId);
      if (!s || s.nodeID !== nodeID) continue;
      // no backpressure across the transporter (as with Moleculer's streams): a slow client's chunks wait here
      if (Array.isArray(chunks) && chunks.length > 0) {
        // a token sent as its text becomes its chunk again (the message is this receiver's: changed in place)
        try {
          for (let i = 0; i < chunks.length; i++) chunks[i] = s.tokens.unpack(chunks[i]);
        } catch (err) {
          this.sinks.delete(requestId);
          s.sink.fail(
            apiError(502, `The node ${nodeID} sent a broken stream: ${(err as Error).message}.`, "node_failed"),
          );
          continue;
        }
        s.sink.push(chunks);
      }
      if (end === 1 || (end && typeof end === "object")) {
        this.sinks.delete(requestId);
        if (end === 1) s.sink.end();
        else s.sink.fail(this.restore(end as Record<string, unknown>, nodeID));
      }
    }
  }

  /** A node left: the streams still open from it break. */
  nodeLost(nodeID: string): void {
    for (const s of [...this.sinks.values()]) {
      if (s.nodeID === nodeID) s.sink.destroy(apiError(502, `The node ${nodeID} left during the stream.`, "node_lost"));
    }
  }

  /** Streams open now. */
  get size(): number {
    return this.sinks.size;
  }
}
