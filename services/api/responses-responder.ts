/**
 * Answers for `POST /v1/responses`: the chat completion or chunk stream the
 * router's chat path produced, as a Response object or the Responses API's
 * typed event stream (lib/responses/output.ts); errors in OpenAI's shape.
 * A response to keep (`store`) is saved before the client gets it (a
 * stream's last event waits for the save), so it can be read back at once.
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
import { FINAL_EVENTS } from "../../lib/responses/passthrough";
import type { Producer } from "../../lib/responses/store";
import type { Answered, Responder } from "./types";

const wire = (events: ResponsesEvent[]) => events.map(formatEvent).join("");

/**
 * Keeps a finished response, saying who made it (the router's chat path by
 * default); never throws: the client gets its answer whether or not it is kept.
 */
export type SaveResponse = (response: Record<string, unknown>, producer?: Producer) => Promise<void>;

/** A Response object as history keeps it, with its usage in the chat path's names. */
export function answeredOf(response: Record<string, unknown>): Answered {
  const u = response.usage as { input_tokens?: number; output_tokens?: number } | null | undefined;
  return {
    body: response,
    usage: u ? { prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens } : null,
  };
}

export function responsesResponder(meta: ResponseMeta, save: SaveResponse): Responder {
  return {
    async json(res, completion) {
      const response = toResponse(meta, completion as OpenAIChatCompletion);
      await save(response);
      sendJson(res, 200, response);
      return answeredOf(response);
    },

    async relay(res, opened, idleMs, observe) {
      const writer = new ResponsesStreamWriter(meta);
      // the events that end the response wait until it is saved
      const held: ResponsesEvent[] = [];
      const result = await relaySse(
        res,
        opened,
        idleMs,
        (chunk) => {
          observe(chunk);
          return true; // the writer needs the usage chunk: it completes the response
        },
        {
          chunk(c) {
            const events = writer.push(c as OpenAIChunk);
            if (!writer.final) return wire(events);
            held.push(...events);
            return "";
          },
          async settle() {
            if (!writer.final) held.push(...writer.end());
            if (writer.final) await save(writer.final);
          },
          end: () => wire(held),
          error: (err) => {
            const { body } = toOpenAIError(err);
            return wire([...held, ...writer.fail(body.error.message, body.error.code)]);
          },
        },
      );
      return writer.final ? { ...result, answered: answeredOf(writer.final) } : result;
    },

    error: sendError,
  };
}

type Json = Record<string, unknown> & { type?: string; sequence_number?: number };

/**
 * Answers for a Responses request an upstream ran itself (lib/responses/passthrough.ts):
 * its response object, or its events relayed as they are; the final one,
 * like the response, waits until the response is saved.
 */
export function nativeResponder(save: SaveResponse, producer: Producer): Responder {
  return {
    async json(res, response) {
      await save(response as Json, producer);
      sendJson(res, 200, response);
      return answeredOf(response as Json);
    },

    async relay(res, opened, idleMs, observe) {
      let final: Json | null = null;
      let held = "";
      let seq = -1;
      const result = await relaySse(res, opened, idleMs, observe, {
        chunk(c) {
          const ev = c as Json;
          if (typeof ev.sequence_number === "number") seq = ev.sequence_number;
          const text = `event: ${String(ev.type)}\ndata: ${JSON.stringify(ev)}\n\n`;
          if (!FINAL_EVENTS.has(String(ev.type))) return text;
          final = ev.response as Json;
          held += text;
          return "";
        },
        async settle() {
          if (final && final.status !== "failed") await save(final, producer);
        },
        end: () => held,
        error(err) {
          const { body } = toOpenAIError(err);
          const { message, code, param } = body.error;
          const ev = { type: "error", code, message, param, sequence_number: seq + 1 };
          return `${held}event: error\ndata: ${JSON.stringify(ev)}\n\n`;
        },
      });
      return final ? { ...result, answered: answeredOf(final) } : result;
    },

    error: sendError,
  };
}
