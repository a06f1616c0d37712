/**
 * Token lanes: the streamed chunks an inference node sends one router, for
 * all of that router's streams together, in one transporter message per
 * window (LLM_NODE_STREAM_BATCH_MS), rather than a Moleculer stream (one
 * message a chunk, or a stream's batch) per request.
 *
 * The router opens a sink for a request before it calls the node, and asks
 * for a lane in the call's meta. A node that has lanes answers the call at
 * once with `{ lane: true }` and sends the stream's chunks as entries of its
 * lane's next message; a node without
 * them answers its Moleculer stream, which the router then reads as before.
 * A lane message is an event for that router alone (`lanes.chunks` in an
 * event group named by the router's node ID): one transporter message, no
 * answer. A stream's first chunk goes on the next turn of the event loop
 * (time to first token does not move); later chunks wait for the window.
 *
 * An entry ends its stream (`1`) or breaks it (a Moleculer plain error). A
 * router that leaves loses its lane: the node stops the lane's requests. A
 * node that leaves breaks the streams the router has open from it.
 */
import type { Readable } from "node:stream";
import { apiError } from "../openai/errors";

/** One request's part of a lane message: its chunks in order, then whether it ended (1) or broke (the error). */
export type LaneEntry = [requestId: string, chunks: unknown[], end: 0 | 1 | Record<string, unknown>];

/** Moleculer's error regenerator (the broker's `errorRegenerator`), as far as lanes use it. */
export interface ErrorRegenerator {
  extractPlainError(err: Error): Record<string, unknown>;
  restore(plain: Record<string, unknown>, payload: { sender: string }): Error;
}

/** A lane message is sent at once when it holds this many chunks (far under NATS's 1 MB a message). */
export const LANE_MAX_CHUNKS = 1000;

export interface LaneSenderOptions {
  /** Sends a lane message to a router (an event for that router alone: no answer). */
  send(routerID: string, entries: LaneEntry[]): void;
  /** How long a chunk may wait for others (ms). */
  windowMs: number;
  /** A stream's error as it crosses the transporter (Moleculer's plain error). */
  plain(err: Error): Record<string, unknown>;
}

/** The node's side: a lane per router. */
export class LaneSender {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly opts: LaneSenderOptions) {}

  /** Sends `stream`'s chunks (its items may be batches: arrays of chunks) to `routerID` as `requestId`'s. */
  attach(routerID: string, requestId: string, stream: Readable): void {
    let lane = this.lanes.get(routerID);
    if (!lane) {
      lane = new Lane(routerID, this.opts);
      this.lanes.set(routerID, lane);
    }
    const own = lane;
    let first = true;
    own.open.add(requestId);
    stream.on("data", (item: unknown) => {
      own.add(requestId, item, first);
      first = false;
    });
    stream.once("end", () => own.close(requestId, 1));
    stream.once("error", (err: Error) => own.close(requestId, this.opts.plain(err)));
  }

  /**
   * A router stopped answering (its heartbeats missed, as a router starved of
   * CPU can for a moment): its lane holds what it would send, for `graceMs`.
   * A router back within it (`routerBack`) gets all of it and its streams go
   * on; one that is not has its lane stopped, and `expired` is given the
   * requests it still had open (the caller stops them).
   */
  routerGone(routerID: string, graceMs: number, expired: (requestIds: string[]) => void): void {
    const lane = this.lanes.get(routerID);
    if (!lane || lane.paused) return;
    lane.pause(
      setTimeout(() => {
        if (this.lanes.get(routerID) === lane && lane.paused) expired(this.routerLost(routerID));
      }, graceMs),
    );
  }

  /** A router that stopped answering is back: its lane sends what it held, and goes on. */
  routerBack(routerID: string): void {
    this.lanes.get(routerID)?.resume();
  }

  /**
   * A router left: its lane is forgotten, and the requests it still had
   * open are answered (the caller stops them: nobody reads them any more).
   */
  routerLost(routerID: string): string[] {
    const lane = this.lanes.get(routerID);
    if (!lane) return [];
    this.lanes.delete(routerID);
    return lane.stop();
  }

  /** Lanes open now (tests, metrics). */
  get size(): number {
    return this.lanes.size;
  }
}

class Lane {
  /** Entries waiting, by request, in the order their first chunk came. */
  private pending = new Map<string, LaneEntry>();
  private chunks = 0;
  /** Requests whose entry goes on the next turn (a first chunk, an end). */
  private urgent = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Immediate | null = null;
  /** Requests attached and not ended yet. */
  readonly open = new Set<string>();
  private stopped = false;
  /** While its router is not answering: the grace timer (nothing is sent meanwhile, everything is kept). */
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly routerID: string,
    private readonly opts: LaneSenderOptions,
  ) {}

  add(requestId: string, item: unknown, urgent: boolean): void {
    if (this.stopped) return;
    const entry = this.entryOf(requestId);
    if (Array.isArray(item)) for (const c of item) entry[1].push(c);
    else entry[1].push(item);
    this.chunks += Array.isArray(item) ? item.length : 1;
    this.schedule(urgent ? requestId : null);
  }

  /** The request's stream ended (1) or broke (its error); a stream that broke before its first chunk too. */
  close(requestId: string, end: 1 | Record<string, unknown>): void {
    if (this.stopped) return;
    this.open.delete(requestId);
    this.entryOf(requestId)[2] = end;
    // the end goes on at once: the router records the request, and its client gets [DONE]
    this.schedule(requestId);
  }

  get paused(): boolean {
    return this.graceTimer !== null;
  }

  /** Holds what it would send until `resume` (or `stop`, when `grace` fires). */
  pause(grace: NodeJS.Timeout): void {
    this.graceTimer = grace;
  }

  /** Sends what it held, and goes on. */
  resume(): void {
    if (!this.graceTimer) return;
    clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.flush();
  }

  /** Sends nothing more; the requests still open. */
  stop(): string[] {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.soon) clearImmediate(this.soon);
    this.pending.clear();
    this.urgent.clear();
    return [...this.open];
  }

  private entryOf(requestId: string): LaneEntry {
    let entry = this.pending.get(requestId);
    if (!entry) {
      entry = [requestId, [], 0];
      this.pending.set(requestId, entry);
    }
    return entry;
  }

  /**
   * A stream's first chunk or its end goes on the next turn of the event loop,
   * alone with the others that are urgent then: the chunks of the lane's other
   * streams keep waiting for the window (with streams starting and ending all
   * the time, sending everything at every urgent turn left nothing to gather).
   * A full message goes at once, all of it.
   */
  private schedule(urgentId: string | null): void {
    if (this.chunks >= LANE_MAX_CHUNKS || this.opts.windowMs <= 0) {
      // flushUrgent sends everything when the message is full
      this.soon ??= setImmediate(() => this.flush());
      return;
    }
    if (urgentId !== null) {
      this.urgent.add(urgentId);
      this.soon ??= setImmediate(() => this.flushUrgent());
      return;
    }
    this.timer ??= setTimeout(() => this.flush(), this.opts.windowMs);
  }

  /** Sends the urgent entries; the rest wait for the window's timer (set if it is not). */
  private flushUrgent(): void {
    this.soon = null;
    // a full message goes whole
    if (this.chunks >= LANE_MAX_CHUNKS) return this.flush();
    if (this.stopped || this.paused || this.urgent.size === 0) return;
    const urgent = this.urgent;
    this.urgent = new Set();
    const entries: LaneEntry[] = [];
    for (const id of urgent) {
      const entry = this.pending.get(id);
      if (!entry) continue;
      entries.push(entry);
      this.pending.delete(id);
      this.chunks -= entry[1].length;
    }
    this.send(entries);
    if (this.pending.size > 0) this.timer ??= setTimeout(() => this.flush(), this.opts.windowMs);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.soon) clearImmediate(this.soon);
    this.timer = null;
    this.soon = null;
    // held while the router is not answering (resume sends it all)
    if (this.paused) return;
    this.urgent.clear();
    if (this.stopped || this.pending.size === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    this.chunks = 0;
    this.send(pending.values());
  }

  /** Sends entries in messages of about LANE_MAX_CHUNKS chunks at most. */
  private send(entries: Iterable<LaneEntry>): void {
    let batch: LaneEntry[] = [];
    let count = 0;
    for (const entry of entries) {
      if (count >= LANE_MAX_CHUNKS && batch.length > 0) {
        this.opts.send(this.routerID, batch);
        batch = [];
        count = 0;
      }
      batch.push(entry);
      count += entry[1].length;
    }
    if (batch.length > 0) this.opts.send(this.routerID, batch);
  }
}

/**
 * A lane stream at the router: the chunks a lane delivered for one request,
 * read by the relay as an async iterator. A queue rather than a Node stream:
 * no stream machinery per chunk (a PassThrough and its iterator cost more per
 * chunk than the rest of the relay, bench/RESULTS.md session 14).
 */
export class LaneSink implements AsyncIterableIterator<unknown> {
  private queue: unknown[] = [];
  private head = 0;
  private waiter: { resolve(r: IteratorResult<unknown>): void; reject(err: unknown): void } | null = null;
  private ended = false;
  /** The node's error, thrown once the chunks before it have been read. */
  private failure: Error | null = null;
  destroyed = false;

  constructor(private readonly onClose: () => void = () => undefined) {}

  /** A chunk, or a batch of them (an array). */
  push(item: unknown): void {
    if (this.destroyed || this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ done: false, value: item });
    } else this.queue.push(item);
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
    if (this.head < this.queue.length) {
      const value = this.queue[this.head];
      this.queue[this.head++] = undefined;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      return Promise.resolve({ done: false, value });
    }
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
  private readonly sinks = new Map<string, { sink: LaneSink; nodeID: string }>();

  constructor(
    /** Rebuilds a node's error from its plain form (Moleculer's error regenerator). */
    private readonly restore: (plain: Record<string, unknown>, nodeID: string) => Error,
  ) {}

  /** The sink of `requestId`'s stream from `nodeID`, open before the node is called. */
  open(requestId: string, nodeID: string): LaneSink {
    const sink: LaneSink = new LaneSink(() => {
      if (this.sinks.get(requestId)?.sink === sink) this.sinks.delete(requestId);
    });
    this.sinks.set(requestId, { sink, nodeID });
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
      if (Array.isArray(chunks) && chunks.length > 0) s.sink.push(chunks.length === 1 ? chunks[0] : chunks);
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
