/** Export rows: the CSV columns of a history record (bodies as JSON text). */
import type { HistoryRecord } from "./record";

export const CSV_COLUMNS = [
  "id",
  "started_at",
  "finished_at",
  "endpoint",
  "kind",
  "stream",
  "model",
  "node_id",
  "node_name",
  "client_ip",
  "api_key_id",
  "api_key_name",
  "user_id",
  "status",
  "error",
  "duration_ms",
  "ttft_ms",
  "tokens_in",
  "tokens_out",
  "retries",
  "nodes_tried",
  "request_body",
  "response_body",
] as const;

/** A text cell a spreadsheet would read as a formula: it starts with =, +, -, @, a tab or a carriage return. */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A text cell made safe to open in a spreadsheet (OWASP's rule for CSV
 * injection): one that could start a formula gets a leading `'`, which the
 * spreadsheet shows as text. Numbers and booleans are written as they are.
 */
export function safeCell(v: string | number | boolean | null): string | number | boolean | null {
  return typeof v === "string" && FORMULA_START.test(v) ? `'${v}` : v;
}

export function csvRow(r: HistoryRecord): Array<string | number | boolean | null> {
  return CSV_COLUMNS.map((c) => {
    const v = r[c];
    if (c === "nodes_tried") return safeCell((v as string[]).join(" "));
    if (c === "request_body" || c === "response_body") return v === null ? "" : safeCell(JSON.stringify(v));
    return safeCell(v as string | number | boolean | null);
  });
}
