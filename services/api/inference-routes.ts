/** The inference routes' handlers (the api's runTraced around generate/embeddings), in one table. */
import { parseMessagesRequest } from "../../lib/providers/anthropic-ingress";
import { anthropicResponder } from "./anthropic-responder";
import { embeddings, generate, type Io } from "./inference";
import { openAIResponder } from "./openai-responder";
import { rerank } from "./rerank";
import { responsesIo } from "./responses-routes";
import type { Handler } from "./gateway";
import type { Req } from "./types";

const openAI = (req: Req): Io => ({ body: req.body, responder: openAIResponder });
const anthropicIo = (req: Req): Io => ({ body: parseMessagesRequest(req.body), responder: anthropicResponder });

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
    "POST /rerank"(gw, req, res) {
      gw.runTraced(req, res, "rerank", (t) => rerank(gw, req, res, t));
    },
    // Anthropic's Messages API, for any model: translated to a chat request and back
    "POST /messages"(gw, req, res) {
      gw.runTraced(req, res, "chat", (t) => generate(gw, req, res, "chat", t, anthropicIo(req)), anthropicResponder);
    },
    "POST /responses"(gw, req, res) {
      gw.runTraced(req, res, "responses", async (t) =>
        generate(gw, req, res, "chat", t, await responsesIo(gw, req, res, t)),
      );
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
    // the same, through the Responses API (the playground's switch)
    "POST /playground/responses"(gw, req, res) {
      gw.runTraced(req, res, "responses", async (t) =>
        generate(gw, req, res, "chat", t, await responsesIo(gw, req, res, t)),
      );
    },
  },
};
