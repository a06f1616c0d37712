/**
 * A stand-in for Anthropic's Messages API (`POST /v1/messages`) on 127.0.0.1,
 * for tests that run the real router against "Anthropic": it records every
 * request, answers queued answers first, and otherwise answers the fixtures
 * in test/fixtures/anthropic the way Anthropic does (JSON, or SSE with
 * `event:` and `data:` lines). A last user message containing "SLOW" streams
 * a text delta every 100 ms until the client closes.
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface StandIn {
  /** Base URL to set as ANTHROPIC_API_BASE_URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** Every request received: method, path (with query), headers, parsed JSON body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  requests: Array<{ method: string; path: string; headers: IncomingHttpHeaders; body: any }>;
  /** Answers to give next, FIFO (status, JSON body, extra headers such as Retry-After); when empty, the default. */
  queue: Array<{ status: number; body?: unknown; headers?: Record<string, string> }>;
  /** How many streamed answers the client closed before their end. */
  closedEarly: number;
  close(): Promise<void>;
}

/** The key the stand-in accepts (`x-api-key`). */
export const ANTHROPIC_TEST_KEY = "test-anthropic-key";

const FIXTURES = join(__dirname, "../../fixtures/anthropic");

/** A JSON fixture without its `_source` note. */
export function anthropicFixture(name: string): Record<string, unknown> {
  const { _source, ...body } = JSON.parse(readFileSync(join(FIXTURES, name), "utf8")) as Record<string, unknown>;
  void _source;
  return body;
}

/** The events of an SSE fixture, in order (comment lines left out). */
export function anthropicFixtureEvents(name: string): Array<{ event: string; data: string }> {
  return readFileSync(join(FIXTURES, name), "utf8")
    .split(/\r?\n\r?\n/)
    .map((block) => {
      const lines = block.split(/\r?\n/);
      const event = lines.find((l) => l.startsWith("event:"))?.replace(/^event: ?/, "") ?? "";
      const data = lines
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.replace(/^data: ?/, ""))
        .join("\n");
      return { event, data };
    })
    .filter((e) => e.data);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "request-id": "req_standin", ...headers });
  res.end(JSON.stringify(body));
}

const anthropicError = (type: string, message: string) => ({ type: "error", error: { type, message } });

/** The text of the last user turn of a Messages body. */
function lastUserText(body: unknown): string {
  const messages = (body as { messages?: Array<{ role?: string; content?: unknown }> } | undefined)?.messages;
  const last = messages?.filter((m) => m.role === "user").at(-1);
  if (typeof last?.content === "string") return last.content;
  if (!Array.isArray(last?.content)) return "";
  return (last.content as Array<{ text?: unknown }>).map((b) => (typeof b.text === "string" ? b.text : "")).join("");
}

const frame = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** The start of a SLOW stream; then `slowDelta(n)` forever. */
function slowStart(): string {
  const message = {
    id: "msg_01SlowStandIn",
    type: "message",
    role: "assistant",
    content: [],
    model: "claude-sonnet-4-5-20250929",
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 5, output_tokens: 1 },
  };
  return (
    frame("message_start", { type: "message_start", message }) +
    frame("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } })
  );
}

const slowDelta = (n: number) =>
  frame("content_block_delta", {
    type: "content_block_delta",
    index: 0,
    delta: { type: "text_delta", text: `tick ${n} ` },
  });

export async function startAnthropicStandIn(): Promise<StandIn> {
  const timers = new Set<NodeJS.Timeout>();

  const stream = (res: ServerResponse, events: Array<{ event: string; data: string }> | null) => {
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    if (!events) res.write(slowStart());
    let n = 0;
    // a fixture's events 10 ms apart, or (events null) a text delta every 100 ms until the client goes
    const timer = setInterval(
      () => {
        if (res.destroyed) return;
        if (events && n >= events.length) {
          clearInterval(timer);
          timers.delete(timer);
          res.end();
          return;
        }
        res.write(events ? `event: ${events[n].event}\ndata: ${events[n].data}\n\n` : slowDelta(n));
        n++;
      },
      events ? 10 : 100,
    );
    timers.add(timer);
    res.on("close", () => {
      if (!res.writableEnded) standIn.closedEarly++;
      clearInterval(timer);
      timers.delete(timer);
    });
  };

  const answer = (method: string, path: string, headers: IncomingHttpHeaders, body: unknown, res: ServerResponse) => {
    const pathname = new URL(path, "http://stand-in").pathname;
    if (method !== "POST" || pathname !== "/v1/messages") {
      sendJson(res, 404, anthropicError("not_found_error", "Not Found"));
      return;
    }
    if (headers["x-api-key"] !== ANTHROPIC_TEST_KEY) {
      sendJson(res, 401, anthropicFixture("error-401-authentication.json"));
      return;
    }
    if (!headers["anthropic-version"]) {
      sendJson(res, 400, anthropicError("invalid_request_error", "anthropic-version: header is required"));
      return;
    }
    const b = (body ?? {}) as { tools?: unknown; stream?: unknown };
    const tools = Array.isArray(b.tools) && b.tools.length > 0;
    if (b.stream !== true) {
      sendJson(res, 200, anthropicFixture(tools ? "message-tool-use.json" : "message-text.json"));
    } else if (lastUserText(body).includes("SLOW")) {
      stream(res, null);
    } else {
      stream(res, anthropicFixtureEvents(tools ? "stream-tool-use.sse" : "stream-text.sse"));
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      let body: unknown = raw || undefined;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        // not JSON: kept as text
      }
      const method = req.method ?? "GET";
      const path = req.url ?? "/";
      standIn.requests.push({ method, path, headers: req.headers, body });
      const queued = standIn.queue.shift();
      if (!queued) {
        answer(method, path, req.headers, body, res);
      } else if (typeof queued.body === "string" || queued.body === undefined) {
        res.writeHead(queued.status, { "content-type": "text/plain; charset=utf-8", ...queued.headers });
        res.end(queued.body ?? "");
      } else {
        sendJson(res, queued.status, queued.body, queued.headers);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const standIn: StandIn = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    queue: [],
    closedEarly: 0,
    async close() {
      for (const t of timers) clearInterval(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return standIn;
}
