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
 * node that leaves breaks the streams the router has open from it. The
 * router's side is lib/cluster/lane-receiver.ts.
 */
import type { Readable } from "node:stream";
import { TokenPacker } from "./lane-tokens";

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

  /**
   * Sends `stream`'s chunks (its items may be batches: arrays of chunks) to
   * `routerID` as `requestId`'s; with `tokens`, a token's chunk as its text
   * (lib/cluster/lane-tokens.ts).
   */
  attach(routerID: string, requestId: string, stream: Readable, tokens = false): void {
    let lane = this.lanes.get(routerID);
    if (!lane) {
      lane = new Lane(routerID, this.opts);
      this.lanes.set(routerID, lane);
    }
    const own = lane;
    let first = true;
    own.open.add(requestId);
    const packer = tokens ? new TokenPacker() : null;
    stream.on("data", (item: unknown) => {
      if (packer) item = Array.isArray(item) ? item.map((c) => packer.pack(c)) : packer.pack(item);
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
