/** Answers in OpenAI's format: JSON, an SSE relay of chunks, OpenAI-shaped errors. */
import { relaySse, sendError, sendJson } from "../../lib/http/respond";
import type { Responder } from "./types";

export const openAIResponder: Responder = {
  json: (res, completion) => sendJson(res, 200, completion),
  relay: relaySse,
  error: sendError,
};
