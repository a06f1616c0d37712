/**
 * A stand-in for the Gemini API (generativelanguage.googleapis.com/v1beta) on
 * 127.0.0.1, for tests that run the real router against "Google": it records
 * every request, answers queued answers first, and otherwise answers the
 * fixtures in test/fixtures/google the way Google does (JSON, or SSE with
 * CRLF CRLF between events for `?alt=sse`).
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface StandIn {
  /** Base URL to set as GOOGLE_API_BASE_URL, e.g. http://127.0.0.1:PORT/v1beta */
  url: string;
  /** Every request received: method, path (with query), headers, parsed JSON body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  requests: Array<{ method: string; path: string; headers: IncomingHttpHeaders; body: any }>;
  /** Answers to give next, first in first out (status, JSON body, extra headers such as Retry-After); when empty, the default. */
  queue: Array<{ status: number; body?: unknown; headers?: Record<string, string> }>;
  /** How many streamed answers the client closed before their end. */
  closedEarly: number;
  close(): Promise<void>;
}

/** The key the stand-in accepts (`x-goog-api-key`). */
export const GOOGLE_TEST_KEY = "test-google-key";

const FIXTURES = join(__dirname, "../../fixtures/google");

/** A JSON fixture without its `_source` note. */
export function googleFixture(name: string): Record<string, unknown> {
  const { _source, ...body } = JSON.parse(readFileSync(join(FIXTURES, name), "utf8")) as Record<string, unknown>;
  return body;
}

/** The `data:` payloads of an SSE fixture, in order (comment lines left out). */
export function googleFixtureEvents(name: string): string[] {
  return readFileSync(join(FIXTURES, name), "utf8")
    .split(/\r?\n\r?\n/)
    .map((block) =>
      block
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.replace(/^data: ?/, ""))
        .join("\n"),
    )
    .filter(Boolean);
}

const JSON_TYPE = "application/json; charset=UTF-8";

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": JSON_TYPE, ...headers });
  res.end(JSON.stringify(body));
}

function googleError(code: number, status: string, message: string) {
  return { error: { code, message, status } };
}

/** The text of the last user turn of a generateContent body. */
function lastUserText(body: unknown): string {
  const contents = (body as { contents?: Array<{ role?: string; parts?: Array<{ text?: unknown }> }> } | undefined)
    ?.contents;
  const last = contents?.filter((c) => (c.role ?? "user") === "user").at(-1);
  return (last?.parts ?? []).map((p) => (typeof p.text === "string" ? p.text : "")).join("");
}

function slowEvent(n: number): string {
  return JSON.stringify({
    candidates: [{ content: { parts: [{ text: `tick ${n} ` }], role: "model" }, index: 0 }],
    usageMetadata: { promptTokenCount: 5, totalTokenCount: 5 },
    modelVersion: "gemini-2.5-flash",
  });
}

export async function startGoogleStandIn(): Promise<StandIn> {
  const timers = new Set<NodeJS.Timeout>();

  const stream = (res: ServerResponse, events: string[] | null) => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    let n = 0;
    // a fixture's events 10 ms apart, or (events null) a text event every 100 ms until the client goes
    const timer = setInterval(
      () => {
        if (res.destroyed) return;
        if (events && n >= events.length) {
          clearInterval(timer);
          timers.delete(timer);
          res.end();
          return;
        }
        res.write(`data: ${events ? events[n] : slowEvent(n)}\r\n\r\n`);
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
    const url = new URL(path, "http://stand-in");
    const m = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(url.pathname);
    if (method !== "POST" || !m) {
      sendJson(res, 404, googleError(404, "NOT_FOUND", `Method not found: ${method} ${url.pathname}`));
      return;
    }
    if (headers["x-goog-api-key"] !== GOOGLE_TEST_KEY) {
      sendJson(res, 400, googleFixture("error-400-api-key-invalid.json"));
      return;
    }
    const tools = Array.isArray((body as { tools?: unknown } | undefined)?.tools);
    if (m[2] === "generateContent") {
      sendJson(res, 200, googleFixture(tools ? "generate-content-function-call.json" : "generate-content-text.json"));
      return;
    }
    if (lastUserText(body).includes("SLOW")) {
      stream(res, null);
      return;
    }
    const events = googleFixtureEvents(tools ? "stream-function-call.sse" : "stream-text.sse");
    if (url.searchParams.get("alt") === "sse") stream(res, events);
    // without alt=sse Google streams one JSON array
    else sendJson(res, 200, JSON.parse(`[${events.join(",")}]`));
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
        res.writeHead(queued.status, { "content-type": "text/plain; charset=UTF-8", ...queued.headers });
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
    url: `http://127.0.0.1:${port}/v1beta`,
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
