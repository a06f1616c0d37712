/**
 * OpenAI's Responses API, passed through: a Responses request for an
 * `openai:` model goes to `/v1/responses` as the client sent it (the model
 * without its prefix, hosted tools and all), and the response or its typed
 * events come back as they are, the model stamped with the name the client
 * used. A provider module like the others, so the one HTTP call
 * (lib/providers/call.ts: timeouts, Retry-After, errors) serves it too.
 * Format: platform.openai.com/docs/api-reference/responses.
 */
import { stampModel } from "../responses/passthrough";
import { openai } from "./openai";
import type { OpenAIChatCompletion, OpenAIChunk, Provider } from "./types";
import { ProviderError } from "./types";

type Json = Record<string, unknown>;

export const openaiResponses: Provider = {
  name: "openai",

  /** `req` is the Responses body (lib/responses/passthrough.ts nativeBody), typed as the chat request callProvider takes. */
  request(req, cfg) {
    return {
      url: `${cfg.baseUrl.replace(/\/+$/, "")}/v1/responses`,
      headers: { authorization: `Bearer ${cfg.apiKey}`, "content-type": "application/json" },
      body: req as unknown as Json,
    };
  },

  response(body, meta) {
    return stampModel(body as Json, meta.model) as unknown as OpenAIChatCompletion;
  },

  stream(meta) {
    return {
      push(ev) {
        // not sent by the Responses API; an OpenAI-compatible proxy may end with it
        if (ev.data === "[DONE]") return [];
        let data: Json;
        try {
          data = JSON.parse(ev.data) as Json;
        } catch {
          throw new ProviderError(502, "an event that is not JSON", "openai");
        }
        return [stampModel(data, meta.model) as unknown as OpenAIChunk];
      },
      end: () => [],
    };
  },

  errorMessage: openai.errorMessage,
};
