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

export function csvRow(r: HistoryRecord): Array<string | number | boolean | null> {
  return CSV_COLUMNS.map((c) => {
    const v = r[c];
    if (c === "nodes_tried") return (v as string[]).join(" ");
    if (c === "request_body" || c === "response_body") return v === null ? "" : JSON.stringify(v);
    return v as string | number | boolean | null;
  });
}
