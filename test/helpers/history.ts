/** A history record as the api sends it, for the history service's tests: defaults, with `over` on top. */
import type { HistoryRecord } from "../../lib/history/record";

export function historyRecord(id: string, ts = Date.now(), over: Partial<HistoryRecord> = {}): HistoryRecord {
  return {
    id,
    ts,
    started_at: new Date(ts).toISOString(),
    finished_at: new Date(ts).toISOString(),
    endpoint: "/v1/chat/completions",
    kind: "chat",
    stream: false,
    model: "m",
    node_id: "n",
    node_name: "n",
    client_ip: "127.0.0.1",
    api_key_id: null,
    api_key_name: null,
    user_id: null,
    request_body: { id },
    response_body: null,
    status: 200,
    error: null,
    duration_ms: 1,
    ttft_ms: 1,
    tokens_in: 1,
    tokens_out: 1,
    retries: 0,
    nodes_tried: ["n"],
    ...over,
  };
}
