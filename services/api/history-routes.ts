/**
 * Request history for the dashboard (login required): list with filters,
 * one record, a streamed JSON/CSV export, per-minute stats and the overview
 * the dashboard's cards show.
 */
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { stringify } from "csv-stringify";
import { CSV_COLUMNS, csvRow } from "../../lib/history/export";
import { parseFilter, type HistoryFilter } from "../../lib/history/query";
import type { HistoryRecord } from "../../lib/history/record";
import { sendError } from "../../lib/http/respond";
import type { Handler } from "./gateway";
import type { Req } from "./types";
import { answer, queryOf } from "./route-helpers";

const EXPORT_PAGE = 500;

async function write(res: ServerResponse, text: string): Promise<void> {
  if (!res.write(text)) await Promise.race([once(res, "drain"), once(res, "close")]);
}

/** Every record the filter selects, a page at a time (never all in memory). */
async function* records(req: Req, filter: HistoryFilter): AsyncGenerator<HistoryRecord> {
  let after: { ts: number; id: string } | undefined;
  for (;;) {
    const page = await req.$ctx.call<HistoryRecord[], object>("history.page", { filter, after, limit: EXPORT_PAGE });
    yield* page;
    if (page.length < EXPORT_PAGE) return;
    const last = page[page.length - 1];
    after = { ts: last.ts, id: last.id };
  }
}

async function exportRecords(req: Req, res: ServerResponse): Promise<void> {
  const filter = parseFilter(queryOf(req));
  // the first page is read before the headers go out, so a failing store is still a plain error
  const it = records(req, filter);
  const first = await it.next();
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  res.writeHead(200, {
    "Content-Type": filter.format === "csv" ? "text/csv; charset=utf-8" : "application/json; charset=utf-8",
    "Content-Disposition": `attachment; filename="request-history-${stamp}.${filter.format}"`,
  });
  if (filter.format === "csv") {
    const csv = stringify({ header: true, columns: [...CSV_COLUMNS] });
    csv.pipe(res);
    for (let r = first; !r.done && !res.destroyed; r = await it.next()) {
      if (!csv.write(csvRow(r.value))) await once(csv, "drain");
    }
    csv.end();
    return;
  }
  await write(res, "[");
  let n = 0;
  for (let r = first; !r.done && !res.destroyed; r = await it.next()) {
    await write(res, `${n++ ? "," : ""}\n${JSON.stringify(r.value)}`);
  }
  res.end("\n]\n");
}

export const historyAliases: Record<string, Handler> = {
  "GET /dashboard/request-responses"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("history.list", { query: queryOf(req) }));
  },
  // before `/:id`, so "export" is not taken for an id
  "GET /dashboard/request-responses/export"(gw, req, res) {
    exportRecords(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, err);
      else {
        gw.logger.warn(`history export broke off: ${(err as Error)?.message}`);
        res.destroy();
      }
    });
  },
  "GET /dashboard/request-responses/:id"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("history.get", { id: req.$params?.id }));
  },
  "GET /dashboard/stats"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("history.stats"));
  },
  "GET /dashboard/overview"(gw, req, res) {
    answer(gw, res, async () => {
      const [stats, nodes, balancer, models] = await Promise.all([
        req.$ctx.call<Record<string, unknown>>("history.stats"),
        req.$ctx.call<Array<{ status: string; active_requests: number; capacity: number; draining: boolean }>>(
          "registry.list",
        ),
        req.$ctx.call<{ queued: number }>("balancer.stats"),
        req.$ctx.call<unknown[]>("registry.models"),
      ]);
      const online = nodes.filter((n) => n.status === "online");
      return {
        nodes: {
          total: nodes.length,
          online: online.length,
          offline: nodes.filter((n) => n.status === "offline").length,
          initializing: nodes.filter((n) => n.status === "initializing").length,
          draining: nodes.filter((n) => n.draining).length,
        },
        models: models.length,
        active_requests: online.reduce((a, n) => a + n.active_requests, 0),
        capacity: online.reduce((a, n) => a + n.capacity, 0),
        queued_requests: balancer.queued,
        last_hour: {
          total_requests: stats.total_requests,
          error_requests: stats.error_requests,
          success_rate: stats.success_rate,
          latency_ms: stats.latency_ms,
          ttft_ms: stats.ttft_ms,
          tokens_out: stats.tokens_out,
          tokens_per_second: stats.tokens_per_second,
        },
        total_records: stats.total_records,
      };
    });
  },
};
