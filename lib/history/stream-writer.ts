/**
 * A history writer on the stream (lib/history/stream.ts): pulls records in
 * batches from the shared consumer, writes each batch in one insert and
 * acknowledges its records once written. While the database cannot be
 * reached the batch is held (JetStream is told it is still being worked on,
 * so it is not handed to another writer) and tried again every `retryMs`;
 * the records behind it wait in the stream. On stop, a batch not written is
 * handed back at once (another router's writer, or this one after a restart,
 * takes it).
 */
import type { JsMsg } from "nats";
import { setTimeout as sleep } from "node:timers/promises";
import type { RecordEvent } from "./record";
import { recordDoc, StoreUnavailable, type Doc, type StoreLog } from "./store";
import type { HistoryStream } from "./stream";

export interface WriterOptions {
  /** Writes a batch (the store's insert). Throws StoreUnavailable while the database cannot be reached. */
  write(docs: Doc[]): Promise<void>;
  log: StoreLog;
  /** Records pulled and written together at most. */
  batch?: number;
  /** How long a pull waits for a full batch (at least 1000: the client's floor). */
  pullMs?: number;
  /** While the database is away: how often the held batch is tried again. */
  retryMs?: number;
}

export class StreamWriter {
  /** Since when the database could not be reached (ms epoch), or null. */
  unreachableSince: number | null = null;
  private stopping = false;
  private readonly wake = new AbortController();
  private running: Promise<void> | null = null;

  constructor(
    private readonly stream: HistoryStream,
    private readonly opts: WriterOptions,
  ) {}

  /** Starts pulling; `stop` ends it. */
  start(): void {
    this.running ??= this.loop().catch((err: Error) => this.opts.log.error(`history: writer stopped: ${err.message}`));
  }

  /** Ends the pulls; a batch not written goes back to the stream. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { batch = 200, pullMs = 1000, retryMs = 2000 } = this.opts;
    const consumer = await this.stream.consumer();
    while (!this.stopping) {
      const msgs: JsMsg[] = [];
      try {
        const pulled = await consumer.fetch({ max_messages: batch, expires: pullMs });
        for await (const m of pulled) msgs.push(m);
      } catch (err) {
        if (this.stopping) break;
        this.opts.log.warn(`history: pulling from the stream failed (${(err as Error).message}); trying again`);
        await this.pause(retryMs);
        continue;
      }
      if (msgs.length) await this.writeBatch(msgs, retryMs);
    }
  }

  /** Writes one pulled batch, acknowledging its records once written; held while the database is away. */
  private async writeBatch(msgs: JsMsg[], retryMs: number): Promise<void> {
    const docs: Doc[] = [];
    const held: JsMsg[] = [];
    for (const m of msgs) {
      try {
        const recs = m.json<RecordEvent | RecordEvent[]>();
        for (const rec of Array.isArray(recs) ? recs : [recs]) docs.push(recordDoc(rec));
        held.push(m);
      } catch {
        // not a record (nothing of ours publishes it): dropped, never redelivered
        this.opts.log.error(`history: a message on ${m.subject} is not a record; dropped`);
        m.term();
      }
    }
    for (;;) {
      try {
        await this.opts.write(docs);
        for (const m of held) m.ack();
        if (this.unreachableSince !== null) {
          this.opts.log.info("history: the store is back; the records the stream kept meanwhile are written");
          this.unreachableSince = null;
        }
        return;
      } catch (err) {
        if (this.stopping || !(err instanceof StoreUnavailable)) {
          if (!this.stopping)
            this.opts.log.error(`history: writing ${docs.length} record(s) failed: ${(err as Error).message}`);
          // back to the stream: delivered again later (to any writer)
          for (const m of held) m.nak(this.stopping ? 0 : retryMs);
          if (!this.stopping) await this.pause(retryMs);
          return;
        }
        if (this.unreachableSince === null) {
          this.unreachableSince = Date.now();
          this.opts.log.warn(`history: ${err.message}; records wait in the stream until it is back`);
        }
        for (const m of held) m.working();
        await this.pause(retryMs);
      }
    }
  }

  /** Waits `ms`, or less if the writer stops meanwhile. */
  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.wake.signal }).catch(() => undefined);
  }
}
