/**
 * A stand-in for OpenAI's chat completions and Responses APIs, answering with the documented
 * formats (test/fixtures/openai, sources noted there). Answers can be queued
 * (errors, 429s); a last user message containing "SLOW" streams forever until
 * the client closes. It also lists one model at `GET /v1/models`.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

export interface StandIn {
  url: string;
  requests: Array<{ method: string; path: string; headers: http.IncomingHttpHeaders; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  queue: Array<{ status: number; body?: unknown; headers?: Record<string, string> }>;
  closedEarly: number;
  close(): Promise<void>;
}

export const OPENAI_TEST_KEY = "test-openai-key";
const FIXTURES = path.join(__dirname, "../../fixtures/openai");
const fixture = (name: string) => {
  const { _source: _s, ...body } = JSON.parse(fs.readFileSync(path.join(FIXTURES, name), "utf8"));
  void _s;
  return body;
};

function lastUserText(body: { messages?: Array<{ role: string; content?: unknown }> }): string {
  const last = [...(body.messages ?? [])].reverse().find((m) => m.role === "user");
  return typeof last?.content === "string" ? last.content : JSON.stringify(last?.content ?? "");
}

/** `POST /v1/responses`: the documented response, or its event stream, under a fresh id. */
function responses(body: { stream?: boolean } | null, res: http.ServerResponse, n: number): void {
  const id = `resp_standin_${n}`;
  if (!body?.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...fixture("response.json"), id }));
    return;
  }
  const text = fs.readFileSync(path.join(FIXTURES, "response-stream.txt"), "utf8");
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.end(text.replaceAll("resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654", id));
}

export async function startOpenAIStandIn(): Promise<StandIn> {
  const standIn: StandIn = {
    url: "",
    requests: [],
    queue: [],
    closedEarly: 0,
    close: async () => undefined,
  };
  /** Responses made at `/v1/responses`: each gets its own id, `resp_standin_<n>`. */
  let made = 0;
  const server = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (raw += d));
    req.on("end", () => {
      const body = raw ? JSON.parse(raw) : null;
      standIn.requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
      const json = (status: number, b: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(b));
      };
      if (req.headers.authorization !== `Bearer ${OPENAI_TEST_KEY}`) {
        return json(401, {
          error: {
            message: "Incorrect API key provided.",
            type: "invalid_request_error",
            param: null,
            code: "invalid_api_key",
          },
        });
      }
      const queued = standIn.queue.shift();
      if (queued) return json(queued.status, queued.body ?? {}, queued.headers);
      // GET /v1/models, as OpenAI documents its list (so the stand-in can be registered as a runtime too)
      if (req.method === "GET" && req.url === "/v1/models") {
        return json(200, {
          object: "list",
          data: [{ id: "gpt-4o-mini", object: "model", created: 1686935002, owned_by: "system" }],
        });
      }
      if (req.url === "/v1/responses") return responses(body, res, ++made);
      if (req.url !== "/v1/chat/completions")
        return json(404, { error: { message: "Unknown path", type: "invalid_request_error" } });
      if (!body.stream) return json(200, fixture(body.tools ? "tool-call.json" : "chat-completion.json"));
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      if (lastUserText(body).includes("SLOW")) {
        const timer = setInterval(() => {
          res.write(
            `data: ${JSON.stringify({ id: "chatcmpl-slow", object: "chat.completion.chunk", created: 1, model: body.model, choices: [{ index: 0, delta: { content: "tick " }, logprobs: null, finish_reason: null }] })}\n\n`,
          );
        }, 100);
        res.on("close", () => {
          clearInterval(timer);
          standIn.closedEarly++;
        });
        return;
      }
      res.end(fs.readFileSync(path.join(FIXTURES, "stream.txt"), "utf8"));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  standIn.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  standIn.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return standIn;
}
