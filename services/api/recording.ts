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

  /** A request has ended: its clock stops now, the rest is queued. */
  finish(trace: RequestTrace, status: number, error: string | null): void {
    trace.end();
    this.ended.push({ trace, status, error });
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
  private record({ trace, status, error }: Ended): void {
    const rec = trace.record(status, error);
    if (this.historyEnabled) {
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
    });
    const { id, ts, model, node_name, status: code, duration_ms, kind } = rec;
    const summary: RequestSummary = { id, ts, model, node_name, status: code, duration_ms, kind };
    if (this.live.size) this.live.send("request", summary);
    if (this.broker.transit) this.toDashboards.push(summary);
  }
}
