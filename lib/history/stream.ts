/**
 * History through a durable NATS JetStream stream (routers as peers on a
 * shared database). The api publishes a finished request's record and waits
 * for JetStream's acknowledgement before the client gets the answer's last
 * bytes, so a router killed right after answering loses nothing. Records
 * that end in one turn of the event loop go in one message (a JSON array),
 * and one publish is in flight at a time: records that end meanwhile go
 * together in the next, so under load a message carries many records and a
 * record never waits for more than the publish before it. Every
 * router's history service pulls from one shared durable consumer, writes
 * what it pulled in one batch and acknowledges each record only once it is
 * written (lib/history/stream-writer.ts); the database inserts by record id,
 * so a record delivered twice (a writer died between its write and its
 * acknowledgements) is stored once.
 *
 * The stream keeps a record until it is acknowledged (work-queue
 * retention), at most `maxBytes` of them (oldest dropped first): while the
 * database is away, the records wait there, and the consumer's pending
 * count is how far behind history is.
 */
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  DiscardPolicy,
  nanos,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type StreamConfig,
} from "nats";
import type { RecordEvent } from "./record";
import type { StoreLog } from "./store";

/** The one consumer every router's history service pulls from. */
export const WRITERS = "history-writers";
/** How long a writer may hold a record unacknowledged before JetStream gives it to another. */
export const ACK_WAIT_MS = 10_000;
/** How long a publish may wait for JetStream's acknowledgement. */
const PUBLISH_TIMEOUT_MS = 5_000;
/** Room left in a message for NATS's own framing. */
const PAYLOAD_MARGIN = 1_024;
/** How long a backlog reading is reused (`/health` may be polled often). */
const BACKLOG_CACHE_MS = 500;

export interface StreamOptions {
  /** The NATS server (the transporter's URL: `nats://user:pass@host:4222`, comma-separated for several). */
  url: string;
  /** Moleculer's NAMESPACE: clusters sharing one NATS server keep apart. */
  namespace: string;
  /** Most bytes the stream holds (oldest records dropped first past it). */
  maxBytes: number;
  /** The connection's name, as NATS monitoring shows it. */
  name: string;
  log: StoreLog;
}

/** The stream's and its subject's names for a namespace. */
export function streamNames(namespace: string): { stream: string; subject: string } {
  const ns = namespace.replace(/[^A-Za-z0-9_-]/g, "_");
  return {
    stream: ns ? `LLM_ROUTER_HISTORY_${ns}` : "LLM_ROUTER_HISTORY",
    subject: ns ? `llm-router.${ns}.history` : "llm-router.history",
  };
}

/** Servers and credentials of a NATS URL as the `nats` client takes them (as Moleculer's transporter reads it). */
export function natsServers(url: string): { servers: string[]; user?: string; pass?: string } {
  const out: { servers: string[]; user?: string; pass?: string } = { servers: [] };
  for (const part of url.split(",")) {
    const u = new URL(part.trim());
    out.servers.push(u.host);
    out.user ??= decodeURIComponent(u.username) || undefined;
    out.pass ??= decodeURIComponent(u.password) || undefined;
  }
  return out;
}

/** A record waiting for the next message: its JSON, and who waits for it to be in the stream. */
interface Waiting {
  json: string;
  done: (err?: unknown) => void;
}

export class HistoryStream {
  readonly stream: string;
  readonly subject: string;
  private backlogRead: { at: number; value: Promise<number> } | null = null;
  /** Records for the next message, and whether a message is on its way now. */
  private waiting: Waiting[] = [];
  private sending = false;
  private scheduled = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    names: { stream: string; subject: string },
  ) {
    this.stream = names.stream;
    this.subject = names.subject;
  }

  /**
   * Connects, and makes the stream and its consumer unless they exist (every
   * router does this at start; the first one makes them). Null when the
   * server has no JetStream (then history is written by each router
   * directly; the caller says so in the log).
   */
  static async open(opts: StreamOptions): Promise<HistoryStream | null> {
    const nc = await connect({ ...natsServers(opts.url), name: opts.name, maxReconnectAttempts: -1 });
    let jsm: JetStreamManager;
    try {
      jsm = await nc.jetstreamManager();
    } catch (err) {
      await nc.close();
      if (/jetstream not enabled|503/i.test(String((err as Error).message ?? err))) return null;
      throw err;
    }
    const names = streamNames(opts.namespace);
    try {
      await ensureStream(jsm, names, opts.maxBytes);
      await ensureConsumer(jsm, names.stream);
    } catch (err) {
      await nc.close();
      throw err;
    }
    return new HistoryStream(nc, nc.jetstream(), jsm, names);
  }

  /**
   * Puts a record in the stream; resolves once JetStream has it. False when
   * it is too large for one NATS message (the caller writes it itself).
   */
  async publish(rec: RecordEvent): Promise<boolean> {
    const json = JSON.stringify(rec);
    if (Buffer.byteLength(json) > this.maxMessageBytes()) return false;
    await new Promise<void>((resolve, reject) => {
      this.waiting.push({ json, done: (err) => (err ? reject(err) : resolve()) });
      // the requests that end in this turn of the event loop (answers that came in one read) go in one message
      if (!this.sending && !this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          if (!this.sending) void this.sendWaiting();
        });
      }
    });
    return true;
  }

  private maxMessageBytes(): number {
    return this.nc.info!.max_payload - PAYLOAD_MARGIN;
  }

  /** Sends what waits, one message at a time (each as many records as fit), until nothing does. */
  private async sendWaiting(): Promise<void> {
    this.sending = true;
    try {
      while (this.waiting.length) {
        const max = this.maxMessageBytes();
        const batch: Waiting[] = [];
        let bytes = 2;
        for (const w of this.waiting) {
          const size = Buffer.byteLength(w.json) + 1;
          if (batch.length && bytes + size > max) break;
          batch.push(w);
          bytes += size;
        }
        this.waiting.splice(0, batch.length);
        const data = Buffer.from(`[${batch.map((w) => w.json).join(",")}]`);
        try {
          await this.js.publish(this.subject, data, { timeout: PUBLISH_TIMEOUT_MS });
          for (const w of batch) w.done();
        } catch (err) {
          for (const w of batch) w.done(err);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  /** The shared consumer history writers pull from. */
  consumer(): Promise<Consumer> {
    return this.js.consumers.get(this.stream, WRITERS);
  }

  /** Messages (each one or more records) in the stream not yet written: not delivered yet, or delivered and not acknowledged. */
  backlog(): Promise<number> {
    const now = Date.now();
    if (!this.backlogRead || now - this.backlogRead.at > BACKLOG_CACHE_MS) {
      const value = this.jsm.consumers.info(this.stream, WRITERS).then((ci) => ci.num_pending + ci.num_ack_pending);
      value.catch(() => (this.backlogRead = null));
      this.backlogRead = { at: now, value };
    }
    return this.backlogRead.value;
  }

  /** Closes the connection once what it sends has gone. */
  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}

async function ensureStream(
  jsm: JetStreamManager,
  names: { stream: string; subject: string },
  maxBytes: number,
): Promise<void> {
  const config: Partial<StreamConfig> & { name: string } = {
    name: names.stream,
    subjects: [names.subject],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_bytes: maxBytes,
  };
  const existing = await jsm.streams.info(names.stream).catch(() => null);
  if (!existing) {
    try {
      await jsm.streams.add(config);
      return;
    } catch (err) {
      // another router made it a moment ago
      if (!(await jsm.streams.info(names.stream).catch(() => null))) throw err;
      return;
    }
  }
  // a changed size limit applies (every router starting with it sets the same)
  if (existing.config.max_bytes !== maxBytes)
    await jsm.streams.update(names.stream, { ...existing.config, max_bytes: maxBytes });
}

async function ensureConsumer(jsm: JetStreamManager, stream: string): Promise<void> {
  if (await jsm.consumers.info(stream, WRITERS).catch(() => null)) return;
  try {
    await jsm.consumers.add(stream, {
      durable_name: WRITERS,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ACK_WAIT_MS),
      max_ack_pending: 20_000,
    });
  } catch (err) {
    if (!(await jsm.consumers.info(stream, WRITERS).catch(() => null))) throw err;
  }
}
