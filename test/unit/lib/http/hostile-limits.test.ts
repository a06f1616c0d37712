/**
 * The limits that keep what a client sends bounded, each at the level where
 * it lives: the body parser (encoding, depth, size), the method table, label
 * values in /metrics, CSV cells, history fields and throttling maps.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { ServiceBroker } from "moleculer";
import { parse as parseCsv } from "csv-parse/sync";
import { stringify as stringifyCsv } from "csv-stringify/sync";
import { ROUTES } from "../../../../lib/auth/routes";
import { WindowCounter } from "../../../../lib/auth/throttle";
import { csvRow, CSV_COLUMNS, safeCell } from "../../../../lib/history/export";
import { bodyJson, MAX_FIELD_CHARS, RequestTrace, type HistoryRecord } from "../../../../lib/history/record";
import { deeperThan, jsonBody, MAX_JSON_DEPTH } from "../../../../lib/http/body";
import { methodDecision } from "../../../../lib/http/methods";
import { sendError } from "../../../../lib/http/respond";
import { BoundedLabels, OTHER_LABEL, UNKNOWN_LABEL } from "../../../../lib/metrics/labels";
import { prometheusText, recordRequest, registerRouterMetrics } from "../../../../lib/metrics/router-metrics";

const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe("the JSON body parser", () => {
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    const parse = jsonBody({ limit: "64kb" });
    server = http.createServer((req, res) =>
      parse(req, res, (err) => {
        if (err) sendError(res, err);
        else res.end(JSON.stringify({ ok: true, body: (req as { body?: unknown }).body }));
      }),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

  test.each(["gzip", "deflate", "br"])(
    "a body whose Content-Encoding says %s but is plain: 400 invalid_body",
    async (enc) => {
      const res = await post('{"a":1}', { "content-encoding": enc });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; type: string } };
      expect(body.error).toMatchObject({ code: "invalid_body", type: "invalid_request_error" });
    },
  );

  test("an honest gzip body is read", async () => {
    const res = await post(gzipSync('{"a":1}'), { "content-encoding": "gzip" });
    expect(await res.json()).toEqual({ ok: true, body: { a: 1 } });
  });

  test("an unknown Content-Encoding: 415", async () => {
    const res = await post('{"a":1}', { "content-encoding": "x-made-up" });
    expect(res.status).toBe(415);
  });

  test.each([
    ["arrays", (d: number) => "[".repeat(d) + "]".repeat(d)],
    ["objects", (d: number) => '{"a":'.repeat(d) + "1" + "}".repeat(d)],
  ])("%s nested 10,000 levels: 400, never a stack overflow", async (_what, make) => {
    const res = await post(`{"x":${make(10_000)}}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/deeper than 64/);
  });

  test(`nesting up to ${MAX_JSON_DEPTH} levels is accepted`, async () => {
    const res = await post(JSON.stringify(nested(MAX_JSON_DEPTH - 1)));
    expect(res.status).toBe(200);
  });

  test("bad JSON: 400 invalid_json; too large: 413", async () => {
    expect((await post('{"a":')).status).toBe(400);
    const big = await post(JSON.stringify({ a: "x".repeat(70_000) }));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("request_too_large");
  });

  test("deeperThan counts levels without recursion", () => {
    expect(deeperThan(nested(3), 3)).toBe(false);
    expect(deeperThan(nested(4), 3)).toBe(true);
    expect(deeperThan(nested(200_000), 64)).toBe(true);
    expect(deeperThan("x", 0)).toBe(false);
  });
});

describe("the method table", () => {
  const opts = { cors: false, preflight: false };
  const concrete = (p: string) => p.replace(/:[a-z]+/g, "x1").replace(/\*[a-z]+/g, "a/b");

  test.each(ROUTES.map((r) => [r.method, r.path, r.access] as const))(
    "%s %s: its own method passes, OPTIONS answers Allow, PATCH is 405",
    (method, path) => {
      const p = concrete(path);
      expect(methodDecision(method, p, opts)).toEqual({ action: "pass" });
      const options = methodDecision("OPTIONS", p, opts);
      expect(options.action).toBe("options");
      expect((options as { allow: string }).allow.split(", ")).toContain(method);
      expect(methodDecision("PATCH", p, opts).action).toBe("not-allowed");
      expect(methodDecision("TRACE", p, opts).action).toBe("not-allowed");
    },
  );

  test("HEAD runs only public GET routes; elsewhere 405", () => {
    expect(methodDecision("HEAD", "/health", opts)).toEqual({ action: "head-as-get" });
    expect(methodDecision("HEAD", "/dashboard/app.js", opts)).toEqual({ action: "head-as-get" });
    expect(methodDecision("HEAD", "/api/dashboard/request-responses/export", opts).action).toBe("not-allowed");
    expect(methodDecision("HEAD", "/api/dashboard/events", opts).action).toBe("not-allowed");
  });

  test("OPTIONS goes to the CORS preflight only when CORS is configured and it is a preflight", () => {
    const path = "/api/dashboard/events";
    expect(methodDecision("OPTIONS", path, { cors: true, preflight: true })).toEqual({ action: "pass" });
    expect(methodDecision("OPTIONS", path, { cors: true, preflight: false }).action).toBe("options");
    expect(methodDecision("OPTIONS", path, { cors: false, preflight: true }).action).toBe("options");
  });

  test("a method the table lacks for a path is 405 with the path's methods", () => {
    const d = methodDecision("DELETE", "/api/dashboard/stats", opts);
    expect(d).toEqual({ action: "not-allowed", allow: "GET, OPTIONS" });
    expect(methodDecision("GET", "/v1/chat/completions", opts)).toEqual({
      action: "not-allowed",
      allow: "POST, OPTIONS",
    });
  });

  test("unknown paths: table methods go on (404 there), others are 404 here", () => {
    expect(methodDecision("GET", "/nope", opts)).toEqual({ action: "pass" });
    expect(methodDecision("OPTIONS", "/nope", opts)).toEqual({ action: "not-found" });
    expect(methodDecision("HEAD", "/nope", opts)).toEqual({ action: "not-found" });
  });

  test("trailing and doubled slashes name the same route", () => {
    expect(methodDecision("OPTIONS", "//api//dashboard/stats/", opts)).toEqual({
      action: "options",
      allow: "GET, OPTIONS",
    });
  });
});

describe("metric labels from client strings", () => {
  test("unknown models share one value, and distinct values are capped", () => {
    const labels = new BoundedLabels(3, 10);
    expect(labels.value("m".repeat(2_000_000), false)).toBe(UNKNOWN_LABEL);
    expect(labels.value(null, true)).toBe(UNKNOWN_LABEL);
    expect(labels.value("a", true)).toBe("a");
    expect(labels.value("b", true)).toBe("b");
    expect(labels.value("0123456789abc", true)).toBe("0123456789");
    expect(labels.value("d", true)).toBe(OTHER_LABEL);
    expect(labels.value("a", true)).toBe("a");
    expect(labels.size).toBe(3);
  });

  test("/metrics stays small whatever model names the requests had", async () => {
    const broker = new ServiceBroker({ logger: false, metrics: { enabled: true } });
    await broker.start();
    try {
      registerRouterMetrics(broker.metrics);
      const finished = (model: string, node: string | null, status: number) =>
        recordRequest(broker.metrics, {
          model,
          node,
          status,
          durationMs: 1,
          ttftMs: 1,
          tokensIn: 1,
          tokensOut: 1,
          retries: 0,
        });
      for (let i = 0; i < 300; i++) finished(`made-up-${i}-${"x".repeat(10_000)}`, null, 404);
      for (let i = 0; i < 30; i++) finished(`openai:${i}${"y".repeat(100_000)}`, "cloud:openai", 404);
      finished("real-model", "node-1", 200);
      const text = prometheusText(broker);
      expect(text.length).toBeLessThan(200_000);
      expect(text).toContain('model="unknown"');
      expect(text).toContain('model="real-model"');
      expect(text).not.toContain("made-up-");
    } finally {
      await broker.stop();
    }
  });
});

describe("CSV cells a spreadsheet would run", () => {
  test.each(["=CMD|' /C calc'!A0", '=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"])(
    "%j starts with a quote",
    (cell) => {
      expect(safeCell(cell)).toBe(`'${cell}`);
    },
  );

  test("ordinary text and numbers stay as they are", () => {
    expect(safeCell("demo-tiny-random")).toBe("demo-tiny-random");
    expect(safeCell(-1)).toBe(-1);
    expect(safeCell(null)).toBe(null);
  });

  test("every text column of an exported row is neutralised", () => {
    const evil = "=HYPERLINK(1)";
    const rec = Object.fromEntries(CSV_COLUMNS.map((c) => [c, evil])) as unknown as HistoryRecord;
    rec.nodes_tried = [evil];
    rec.request_body = evil;
    rec.response_body = null;
    const text = stringifyCsv([csvRow(rec)], { header: true, columns: [...CSV_COLUMNS] });
    const rows = parseCsv(text, { columns: true }) as Array<Record<string, string>>;
    for (const [col, v] of Object.entries(rows[0])) {
      if (col === "response_body") continue;
      expect(v).not.toMatch(/^[=+\-@\t\r]/);
    }
  });
});

describe("history records of hostile requests", () => {
  test("a body that cannot be serialised is recorded without it, never throwing", () => {
    let deep: unknown = {};
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    expect(JSON.parse(bodyJson(deep, 65_536))).toMatchObject({ unserializable: true });
  });

  test("client-supplied text fields are cut", () => {
    const trace = new RequestTrace({
      id: "r1",
      endpoint: "/v1/chat/completions",
      kind: "chat",
      clientIp: "127.0.0.1",
      apiKey: { id: "k", name: "n".repeat(10_000), owner: "u" },
      body: {},
      maxBodyBytes: 1000,
    });
    trace.model = "m".repeat(2 * 1024 * 1024);
    const rec = trace.record(404, "e".repeat(2 * 1024 * 1024));
    expect(rec.model!.length).toBeLessThanOrEqual(MAX_FIELD_CHARS.model);
    expect(rec.error!.length).toBeLessThanOrEqual(MAX_FIELD_CHARS.error);
    expect(rec.api_key_name!.length).toBeLessThanOrEqual(MAX_FIELD_CHARS.name);
  });
});

describe("throttling counters", () => {
  test("never hold more keys than their bound, even within one window", () => {
    const c = new WindowCounter(60_000, 100);
    for (let i = 0; i < 10_000; i++) c.hit(`user-${i}`, 1000);
    expect((c as unknown as { windows: Map<string, unknown> }).windows.size).toBeLessThanOrEqual(100);
    expect(c.count("user-9999", 1000)).toBe(1);
  });
});
