/**
 * Answers for `POST /v1/responses`: the chat completion or chunk stream the
 * router's chat path produced, as a Response object or the Responses API's
 * typed event stream (lib/responses/output.ts); errors in OpenAI's shape.
 */
import { relaySse, sendError, sendJson } from "../../lib/http/respond";
import { toOpenAIError } from "../../lib/openai/errors";
import type { OpenAIChatCompletion, OpenAIChunk } from "../../lib/providers/types";
import {
  formatEvent,
  toResponse,
  ResponsesStreamWriter,
  type ResponseMeta,
  type ResponsesEvent,
} from "../../lib/responses/output";
import type { Responder } from "./types";

const wire = (events: ResponsesEvent[]) => events.map(formatEvent).join("");

export function responsesResponder(meta: ResponseMeta): Responder {
  return {
    json(res, completion) {
      sendJson(res, 200, toResponse(meta, completion as OpenAIChatCompletion));
    },

    relay(res, opened, idleMs, observe) {
      const writer = new ResponsesStreamWriter(meta);
      return relaySse(
        res,
        opened,
        idleMs,
        (chunk) => {
          observe(chunk);
          return true; // the writer needs the usage chunk: it completes the response
        },
        {
          chunk: (c) => wire(writer.push(c as OpenAIChunk)),
          end: () => wire(writer.end()),
          error: (err) => {
            const { body } = toOpenAIError(err);
            return wire(writer.fail(body.error.message, body.error.code));
          },
        },
      );
    },

    error: sendError,
  };
}
