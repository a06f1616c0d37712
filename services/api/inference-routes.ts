/** The inference routes' handlers (the api's runTraced around generate/embeddings), in one table. */
import type { ServerResponse } from "node:http";
import { parseMessagesRequest } from "../../lib/providers/anthropic-ingress";
import type { ApiThis } from "./types";
import { anthropicResponder } from "./anthropic-responder";
import type { AliasGroups } from "./fast-lane";
import { embeddings, generate, openAIResponder, type Io } from "./inference";
import type { Req } from "./route-helpers";

const openAI = (req: Req): Io => ({ body: req.body, responder: openAIResponder });
const anthropicIo = (req: Req): Io => ({ body: parseMessagesRequest(req.body), responder: anthropicResponder });

/**
 * The inference aliases, by route prefix: served by the fast lane
 * (services/api/fast-lane.ts) and, for what it hands on, by moleculer-web.
 */
export const inferenceAliases: AliasGroups = {
  "/v1": {
    "POST /chat/completions"(this: ApiThis, req: Req, res: ServerResponse) {
      this.runTraced(req, res, "chat", (t) => generate.call(this, req, res, "chat", t, openAI(req)));
    },
    "POST /completions"(this: ApiThis, req: Req, res: ServerResponse) {
      this.runTraced(req, res, "completion", (t) => generate.call(this, req, res, "completion", t, openAI(req)));
    },
    "POST /embeddings"(this: ApiThis, req: Req, res: ServerResponse) {
      this.runTraced(req, res, "embedding", (t) => embeddings.call(this, req, res, t));
    },
    // Anthropic's Messages API, for any model: translated to a chat request and back
    "POST /messages"(this: ApiThis, req: Req, res: ServerResponse) {
      this.runTraced(
        req,
        res,
        "chat",
        (t) => generate.call(this, req, res, "chat", t, anthropicIo(req)),
        anthropicResponder,
      );
    },
  },
  "/api": {
    // legacy endpoints of the seed: OpenAI-format answers
    "POST /chat"(this: ApiThis, req: Req, res: ServerResponse) {
      this.runTraced(req, res, "legacy", (t) => generate.call(this, req, res, "chat", t, openAI(req)));
    },
    "POST /generate"(this: ApiThis, req: Req, res: ServerResponse) {
      this.runTraced(req, res, "legacy", (t) => generate.call(this, req, res, "completion", t, openAI(req)));
    },
    // the dashboard's playground: a chat with the login instead of an API key
    "POST /playground/chat"(this: ApiThis, req: Req, res: ServerResponse) {
      this.runTraced(req, res, "chat", (t) => generate.call(this, req, res, "chat", t, openAI(req)));
    },
  },
};
