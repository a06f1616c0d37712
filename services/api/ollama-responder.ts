/**
 * Answers of the Ollama listener (services/api/ollama-server.ts): the
 * router's chat completion or chunk stream in Ollama's shapes
 * (lib/ollama/egress.ts), streams as NDJSON, errors as `{"error": "…"}`
 * (in a stream, a last line with `error`).
 */
import type { ServerResponse } from "node:http";
import { relaySse, sendJson } from "../../lib/http/respond";
import { errorHeaders, toOpenAIError } from "../../lib/openai/errors";
import { OllamaClock, OllamaStreamWriter, toOllama, type OllamaKind } from "../../lib/ollama/egress";
import type { Responder } from "./types";

const NDJSON = { "Content-Type": "application/x-ndjson", "Cache-Control": "no-cache", "X-Accel-Buffering": "no" };
const lines = (objects: object[]) => objects.map((o) => `${JSON.stringify(o)}\n`).join("");

/** An error as Ollama writes one: `{"error": "…"}` with its status. */
export function sendOllamaError(res: ServerResponse, err: unknown): number {
  const e = toOpenAIError(err);
  if (res.headersSent) {
    if (!res.writableEnded) res.end(lines([{ error: e.body.error.message }]));
    return e.status;
  }
  sendJson(res, e.status, { error: e.body.error.message }, errorHeaders(e));
  return e.status;
}

/** The responder for one request: its kind and the model name it asked for. */
export function ollamaResponder(kind: OllamaKind, model: string): Responder {
  const clock = new OllamaClock();
  return {
    json(res, completion) {
      sendJson(res, 200, toOllama(kind, model, completion, clock));
    },

    relay(res, opened, idleMs, observe) {
      const writer = new OllamaStreamWriter(kind, model, clock);
      return relaySse(
        res,
        opened,
        idleMs,
        (chunk) => {
          observe(chunk);
          return true; // the writer needs the usage chunk for the done line
        },
        {
          headers: NDJSON,
          chunk: (c) => lines(writer.push(c)),
          end: () => lines(writer.end()),
          error: (err) => lines([{ error: toOpenAIError(err).body.error.message }]),
        },
      );
    },

    error: sendOllamaError,
  };
}
