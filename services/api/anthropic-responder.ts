/**
 * Answers for `POST /v1/messages` in Anthropic's format: the chat completion
 * or chunk stream the router produced, translated by the same code as the
 * Anthropic provider (lib/providers/anthropic-ingress.ts), and errors in
 * Anthropic's error shape so its SDK reads them.
 */
import { relaySse, sendJson } from "../../lib/http/respond";
import { errorHeaders, toOpenAIError } from "../../lib/openai/errors";
import { AnthropicStreamWriter, anthropicError, toAnthropicMessage } from "../../lib/providers/anthropic-ingress";
import type { OpenAIChatCompletion, OpenAIChunk } from "../../lib/providers/types";
import type { Responder } from "./types";

const sse = (events: Array<{ event: string; data: object }>) =>
  events.map((e) => `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`).join("");

export const anthropicResponder: Responder = {
  json(res, completion) {
    const c = completion as OpenAIChatCompletion;
    sendJson(res, 200, toAnthropicMessage(c, c.model));
  },

  relay(res, opened, idleMs, observe) {
    const writer = new AnthropicStreamWriter();
    return relaySse(
      res,
      opened,
      idleMs,
      (chunk) => {
        observe(chunk);
        return true; // the writer needs the usage chunk too
      },
      {
        chunk: (c) => sse(writer.push(c as OpenAIChunk)),
        end: () => sse(writer.end()),
        error: (err) => {
          const { status, body } = toOpenAIError(err);
          return sse([{ event: "error", data: anthropicError(status, body.error.message) }]);
        },
      },
    );
  },

  error(res, err) {
    const e = toOpenAIError(err);
    sendJson(res, e.status, anthropicError(e.status, e.body.error.message), errorHeaders(e));
    return e.status;
  },
};
