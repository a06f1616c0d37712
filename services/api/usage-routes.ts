/**
 * Usage from the daily roll-ups (services/usage.service.ts), mounted on
 * `/api`, with a login: summed per key, user, model, node or day over a range
 * of UTC days, as JSON or CSV. An admin sees every key's usage; a viewer only
 * that of their own keys (and their playground requests).
 */
import type { ServerResponse } from "node:http";
import { stringify } from "csv-stringify/sync";
import { safeCell } from "../../lib/history/export";
import { sendError, sendJson } from "../../lib/http/respond";
import { parseUsageQuery } from "../../lib/usage/query";
import type { UsageReport, UsageSummary } from "../../lib/usage/rollup";
import type { Handler } from "./gateway";
import { claims, queryOf, type Req } from "./route-helpers";

export const USAGE_CSV_COLUMNS = [
  "group",
  "requests",
  "errors",
  "tokens_in",
  "tokens_out",
  "median_latency_ms",
] as const satisfies ReadonlyArray<keyof UsageSummary>;

/** The report as CSV text: a header, then a row per group (a text cell a spreadsheet could run is quoted as text). */
export function usageCsv(rows: UsageSummary[]): string {
  return stringify(
    rows.map((r) => USAGE_CSV_COLUMNS.map((c) => safeCell(r[c]))),
    { header: true, columns: [...USAGE_CSV_COLUMNS] },
  );
}

async function report(req: Req, res: ServerResponse): Promise<void> {
  const q = parseUsageQuery(queryOf(req));
  const c = claims(req);
  // viewers: the usage of their own keys only
  const mine = c.role === "admin" ? {} : { user_id: c.sub };
  const usage = await req.$ctx.call<UsageReport, object>("usage.report", {
    group_by: q.group_by,
    from: q.from,
    to: q.to,
    ...mine,
  });
  if (q.format === "json") return sendJson(res, 200, usage);
  res.writeHead(200, {
    "Content-Type": "text/csv; charset=utf-8",
    "Content-Disposition": `attachment; filename="usage-by-${q.group_by}-${q.from}-${q.to}.csv"`,
  });
  res.end(usageCsv(usage.rows));
}

export const usageAliases: Record<string, Handler> = {
  /** `?group_by=key|user|model|node|day&from=YYYY-MM-DD&to=YYYY-MM-DD&format=json|csv` → `{group_by, from, to, rows}`. */
  "GET /usage"(gw, req, res) {
    report(req, res).catch((err: unknown) => {
      if (sendError(res, err) >= 500) gw.logger.warn(`usage report failed: ${(err as Error)?.message}`);
    });
  },
};
