/** The inference routes' handlers (the api's runTraced around generate/embeddings), in one table. */
import type { ServerResponse } from "node:http";
import { badRequest } from "../../lib/openai/errors";
import { parseMessagesRequest } from "../../lib/providers/anthropic-ingress";
import { newResponseId } from "../../lib/responses/output";
import { parseResponsesRequest } from "../../lib/responses/request";
import { anthropicResponder } from "./anthropic-responder";
import { embeddings, generate, type Io } from "./inference";
import { openAIResponder } from "./openai-responder";
import { responsesResponder } from "./responses-responder";
import type { Handler } from "./gateway";
import type { Req } from "./types";

const openAI = (req: Req): Io => ({ body: req.body, responder: openAIResponder });
const anthropicIo = (req: Req): Io => ({ body: parseMessagesRequest(req.body), responder: anthropicResponder });

/**
 * OpenAI's Responses API, for any model: translated to a chat request and
 * back. Hosted tools the model cannot run (not forced) are left out and
 * named in `X-Router-Dropped-Tools`.
 */
function responsesIo(req: Req, res: ServerResponse): Io {
  const { chat, droppedTools, echo } = parseResponsesRequest(req.body);
  // conversation state is not kept yet: a continuation is refused, and the response says it was not stored
  if (echo.previous_response_id != null) {
    throw badRequest(
      "previous_response_id is not supported yet: this router does not store responses; send the whole conversation as input items.",
      "previous_response_id",
      "unsupported_parameter",
    );
  }
  echo.store = false;
  if (droppedTools.length) res.setHeader("X-Router-Dropped-Tools", droppedTools.join(", "));
  const model = typeof chat.model === "string" ? chat.model : "";
  const meta = { id: newResponseId(), model, createdAt: Math.floor(Date.now() / 1000), echo };
  return { body: chat, responder: responsesResponder(meta) };
}

/**
 * The inference aliases, by route prefix: served by the fast lane
 * (services/api/fast-lane.ts) and, for what it hands on, by moleculer-web.
 */
export const inferenceAliases: Record<string, Record<string, Handler>> = {
  "/v1": {
    "POST /chat/completions"(gw, req, res) {
      gw.runTraced(req, res, "chat", (t) => generate(gw, req, res, "chat", t, openAI(req)));
    },
    "POST /completions"(gw, req, res) {
      gw.runTraced(req, res, "completion", (t) => generate(gw, req, res, "completion", t, openAI(req)));
    },
    "POST /embeddings"(gw, req, res) {
      gw.runTraced(req, res, "embedding", (t) => embeddings(gw, req, res, t));
    },
    // Anthropic's Messages API, for any model: translated to a chat request and back
    "POST /messages"(gw, req, res) {
      gw.runTraced(req, res, "chat", (t) => generate(gw, req, res, "chat", t, anthropicIo(req)), anthropicResponder);
    },
    "POST /responses"(gw, req, res) {
      gw.runTraced(req, res, "responses", (t) => generate(gw, req, res, "chat", t, responsesIo(req, res)));
    },
  },
  "/api": {
    // legacy endpoints of the seed: OpenAI-format answers
    "POST /chat"(gw, req, res) {
      gw.runTraced(req, res, "legacy", (t) => generate(gw, req, res, "chat", t, openAI(req)));
    },
    "POST /generate"(gw, req, res) {
      gw.runTraced(req, res, "legacy", (t) => generate(gw, req, res, "completion", t, openAI(req)));
    },
    // the dashboard's playground: a chat with the login instead of an API key
    "POST /playground/chat"(gw, req, res) {
      gw.runTraced(req, res, "chat", (t) => generate(gw, req, res, "chat", t, openAI(req)));
    },
  },
};
