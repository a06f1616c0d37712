/**
 * What happens when an inference request has ended: metrics, the dashboard's
 * live feed and history. The clock stops at once; the bookkeeping is queued
 * and done a millisecond later for all requests that ended meanwhile, so it
 * never stands between a client and its next answer.
 *
 * History goes to the history service of this process by a method call, or
 * (a gateway: router replicas, LLM_ROUTER_PROCESSES) in batches as a
 * `history.records` event. With a transporter, the summaries also go in
 * batches to the other api processes, whose dashboards show every request
 * of the router, not only their own.
 */
import type { ServiceBroker } from "moleculer";
import { Batcher } from "../../lib/cluster/batcher";
import { historyConfig } from "../../lib/config";
import type { RequestTrace, RecordEvent } from "../../lib/history/record";
import type { LiveHub } from "../../lib/http/live-hub";
import { recordRequest } from "../../lib/metrics/router-metrics";
import { routerCore } from "../../lib/core/router-core";

/** What the dashboard's feed shows of a finished request. */
export type RequestSummary = Pick<RecordEvent, "id" | "ts" | "model" | "node_name" | "status" | "duration_ms" | "kind">;

interface Ended {
  trace: RequestTrace;
  status: number;
  error: string | null;
  /** Its history record, when it was made at once (committed to the history stream). */
  rec?: RecordEvent;
}

export class RequestRecorder {
  /** Requests that ended and are not recorded yet: recorded together a millisecond later. */
  private readonly ended: Batcher<Ended>;
  private readonly toHistory: Batcher<RecordEvent>;
  private readonly toDashboards: Batcher<RequestSummary>;
  /** LLM_ROUTER_HISTORY_ENABLED, read when the api is created. */
  private readonly historyEnabled = historyConfig().enabled;

  constructor(
    private readonly broker: ServiceBroker,
    private readonly live: LiveHub,
    private readonly logger: ServiceBroker["logger"],
    /** Called with how many ended requests were just recorded. */
    private readonly onRecorded: (count: number) => void,
  ) {
    this.ended = new Batcher((ended) => this.recordAll(ended), 1, Infinity);
    this.toHistory = new Batcher((records) => {
      this.broker
        .emit("history.records", { records })
        .catch((err: Error) => this.logger.warn(`history: ${err.message}`));
    });
    this.toDashboards = new Batcher((requests) => {
      this.broker.broadcast("api.requests", { requests }).catch(() => undefined);
    });
  }

  /** Whether records are committed to the history stream (the api then holds each answer's last bytes). */
  commits(): boolean {
    return this.historyEnabled && routerCore(this.broker).history?.commit !== undefined;
  }

  /**
   * A request has ended: its clock stops now, the rest is queued. With the
   * history stream, its record is made now and committed: the promise
   * resolves once the stream has it.
   */
  finish(trace: RequestTrace, status: number, error: string | null): Promise<void> | undefined {
    trace.end();
    const commit = this.historyEnabled ? routerCore(this.broker).history?.commit : undefined;
    if (!commit) {
      this.ended.push({ trace, status, error });
      return undefined;
    }
    const rec = trace.record(status, error);
    this.ended.push({ trace, status, error, rec });
    return commit(rec);
  }

  /** Records what `finish` queued (also called by a `/metrics` scrape, so it sees every answer). */
  recordEnded(): void {
    this.ended.flush();
  }

  private recordAll(ended: Ended[]): void {
    for (const e of ended) {
      try {
        this.record(e);
      } catch (err) {
        this.logger.warn(`recording a request failed: ${(err as Error).message}`);
      }
    }
    this.onRecorded(ended.length);
  }

  /** Sends what waits for other processes now (the api is stopping). */
  flush(): void {
    this.recordEnded();
    this.toHistory.flush();
    this.toDashboards.flush();
  }

  /** Requests another api process finished, for this one's dashboards. */
  showRemote(requests: RequestSummary[]): void {
    if (this.live.size) for (const r of requests) this.live.send("request", r);
  }

  /** One ended request: history first (what must not be lost), then metrics and the live feed. */
  private record({ trace, status, error, rec: committed }: Ended): void {
    const rec = committed ?? trace.record(status, error);
    if (this.historyEnabled && !committed) {
      const local = routerCore(this.broker).history;
      if (local) local.accept(rec);
      else this.toHistory.push(rec);
    }
    recordRequest(this.broker.metrics, {
      model: rec.model,
      node: rec.node_id,
      status,
      durationMs: rec.duration_ms,
      ttftMs: rec.ttft_ms,
      tokensIn: rec.tokens_in,
      tokensOut: rec.tokens_out,
      retries: rec.retries,
      queueMs: rec.queue_ms ?? null,
    });
    const { id, ts, model, node_name, status: code, duration_ms, kind } = rec;
    const summary: RequestSummary = { id, ts, model, node_name, status: code, duration_ms, kind };
    if (this.live.size) this.live.send("request", summary);
    if (this.broker.transit) this.toDashboards.push(summary);
  }
}
