import type { IncomingMessage } from "node:http";
import { clientIpResolver } from "../../../../lib/http/client-ip";
import { parseFilter, storeQuery, MAX_PER_PAGE } from "../../../../lib/history/query";
import { bodyJson, RequestTrace, StreamAssembler } from "../../../../lib/history/record";
import { hourStats } from "../../../../lib/history/stats";
import { csvRow, CSV_COLUMNS } from "../../../../lib/history/export";

describe("history filters", () => {
  test("map to a store query built by our code", () => {
    const f = parseFilter({
      model: "m",
      node: "n1",
      status: "error",
      from: "2026-11-28T00:00:00Z",
      to: "2026-11-28T01:00:00Z",
      q: "a.b*",
      kind: "chat",
    });
    const q = storeQuery(f);
    expect(q).toMatchObject({
      model: "m",
      node_id: "n1",
      kind: "chat",
      status: { $gte: 400 },
      ts: { $gte: Date.parse("2026-11-28T00:00:00Z"), $lte: Date.parse("2026-11-28T01:00:00Z") },
    });
    const re = (q.search_text as { $regex: RegExp }).$regex;
    expect(re.test("xx a.b* yy")).toBe(true);
    expect(re.test("aXbbb")).toBe(false);
  });

  test("defaults, numeric status and the per_page cap", () => {
    expect(parseFilter({})).toMatchObject({ page: 1, per_page: 50, format: "json" });
    expect(parseFilter({ per_page: "5000" }).per_page).toBe(MAX_PER_PAGE);
    expect(storeQuery(parseFilter({ status: "503" }))).toEqual({ status: 503 });
    expect(storeQuery(parseFilter({ status: "success" }))).toEqual({ status: { $lt: 400 } });
  });

  test.each([
    [{ model: { $ne: "x" } }, "model"],
    [{ status: { $gt: 0 } }, "status"],
    [{ from: "not a date" }, "from"],
    [{ q: ["a", "b"] }, "q"],
    [{ page: "0" }, "page"],
    [{ q: "x".repeat(300) }, "q"],
  ])("refuses %j", (query, param) => {
    expect(() => parseFilter(query)).toThrow(
      expect.objectContaining({ code: 400, data: expect.objectContaining({ param }) }),
    );
  });
});

describe("history records", () => {
  test("a body over the cap is kept cut and marked", () => {
    expect(bodyJson({ a: 1 }, 100)).toBe('{"a":1}');
    const cut = JSON.parse(bodyJson({ text: "x".repeat(1000) }, 256)) as {
      truncated: boolean;
      bytes: number;
      preview: string;
    };
    expect(cut.truncated).toBe(true);
    expect(cut.bytes).toBe(1011);
    expect(cut.preview).toHaveLength(256);
    expect(bodyJson(undefined, 10)).toBe("null");
    // counted in bytes, not characters
    expect(JSON.parse(bodyJson({ t: "é".repeat(60) }, 100))).toMatchObject({ truncated: true, bytes: 128 });
    expect(bodyJson({ t: "é".repeat(40) }, 100)).toBe(JSON.stringify({ t: "é".repeat(40) }));
  });

  test("a stream is assembled from chat and completion chunks", () => {
    const chat = new StreamAssembler();
    chat.add({ choices: [{ delta: { role: "assistant", content: "He" } }] });
    chat.add({ choices: [{ delta: { content: "llo" }, finish_reason: null }] });
    chat.add({ choices: [{ delta: {}, finish_reason: "stop" }] });
    chat.add({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2 } });
    expect(chat.body()).toEqual({
      text: "Hello",
      finish_reason: "stop",
      usage: { prompt_tokens: 3, completion_tokens: 2 },
    });
    const text = new StreamAssembler();
    text.add({ choices: [{ text: "ab" }] });
    text.add({ choices: [{ text: "c", finish_reason: "length" }] });
    expect(text.body()).toMatchObject({ text: "abc", finish_reason: "length" });
  });

  test("a trace counts retries and nodes tried, and takes usage from the answer", () => {
    const t = new RequestTrace({
      id: "req-1",
      endpoint: "/v1/chat/completions",
      kind: "chat",
      clientIp: "10.0.0.1",
      apiKey: { id: "k1", name: "ci", owner: "u1" },
      body: { model: "m" },
      maxBodyBytes: 1000,
      now: 1000,
    });
    t.model = "m";
    t.attempt("a", "box-a");
    t.attempt("b", "box-b");
    t.firstByte();
    t.answered({ usage: { prompt_tokens: 4, completion_tokens: 6 } });
    const r = t.record(200, null, 2000);
    expect(r).toMatchObject({
      id: "req-1",
      ts: 1000,
      started_at: new Date(1000).toISOString(),
      finished_at: new Date(2000).toISOString(),
      node_id: "b",
      node_name: "box-b",
      nodes_tried: ["a", "b"],
      retries: 1,
      tokens_in: 4,
      tokens_out: 6,
      api_key_id: "k1",
      user_id: "u1",
    });
    expect(r.ttft_ms).not.toBeNull();
    expect(r.request_json).toBe('{"model":"m"}');
    const { request_json, response_json, ...rest } = r;
    const row = csvRow({ ...rest, request_body: JSON.parse(request_json), response_body: JSON.parse(response_json) });
    expect(row).toHaveLength(CSV_COLUMNS.length);
    expect(row[CSV_COLUMNS.indexOf("nodes_tried")]).toBe("a b");
    expect(row[CSV_COLUMNS.indexOf("request_body")]).toBe('{"model":"m"}');
  });
});

describe("hour stats", () => {
  test("per-minute success and error counts, percentiles and tokens/s", () => {
    const now = Date.parse("2026-11-28T10:30:30Z");
    const s = hourStats(
      [
        { ts: now - 1000, status: 200, duration_ms: 100, ttft_ms: 20, tokens_out: 8 },
        { ts: now - 61_000, status: 500, duration_ms: 10, ttft_ms: null, tokens_out: null },
        { ts: now - 2 * 3_600_000, status: 200, duration_ms: 5, ttft_ms: 1, tokens_out: 1 },
      ],
      now,
    );
    expect(s.per_minute).toHaveLength(60);
    expect(s.per_minute[59]).toEqual({
      minute: "2026-11-28T10:30:00.000Z",
      success: 1,
      error: 0,
      latency_p50_ms: 100,
      ttft_p50_ms: 20,
    });
    expect(s.per_minute[58]).toMatchObject({ success: 0, error: 1, latency_p50_ms: 10, ttft_p50_ms: null });
    expect(s.per_minute[0]).toMatchObject({ success: 0, error: 0, latency_p50_ms: null });
    expect(s).toMatchObject({ total_requests: 2, error_requests: 1, success_rate: 50, tokens_out: 8 });
    expect(s.tokens_per_second).toBe(100); // 8 tokens over 80 ms of generation
    expect(s.latency_ms.p50).toBe(100);
  });
});

describe("client IP", () => {
  const req = (remote: string, xff?: string) =>
    ({
      socket: { remoteAddress: remote },
      connection: { remoteAddress: remote },
      headers: xff ? { "x-forwarded-for": xff } : {},
    }) as unknown as IncomingMessage;

  test("X-Forwarded-For counts only from a trusted proxy", () => {
    const untrusting = clientIpResolver([]);
    expect(untrusting(req("127.0.0.1", "203.0.113.7"))).toBe("127.0.0.1");
    const trusting = clientIpResolver(["loopback", "10.0.0.0/8"]);
    expect(trusting(req("127.0.0.1", "203.0.113.7"))).toBe("203.0.113.7");
    expect(trusting(req("10.1.2.3", "198.51.100.1, 203.0.113.7"))).toBe("203.0.113.7");
    expect(trusting(req("192.0.2.50", "203.0.113.7"))).toBe("192.0.2.50");
  });
});
