/**
 * OpenAI: the request goes as it came (model without its prefix), answers and
 * stream chunks come back as they are, stamped with the model name the client
 * used. Formats: platform.openai.com/docs/api-reference/chat.
 */
import type { OpenAIChatCompletion, OpenAIChunk, Provider } from "./types";
import { ProviderError } from "./types";

export const openai: Provider = {
  name: "openai",

  request(req, cfg) {
    const body: Record<string, unknown> = { ...req };
    // usage is always asked for: history and metrics count tokens
    if (req.stream) body.stream_options = { ...req.stream_options, include_usage: true };
    return {
      url: `${cfg.baseUrl.replace(/\/+$/, "")}/v1/chat/completions`,
      headers: { authorization: `Bearer ${cfg.apiKey}`, "content-type": "application/json" },
      body,
    };
  },

  response(body, meta) {
    return { ...(body as OpenAIChatCompletion), model: meta.model };
  },

  stream(meta) {
    return {
      push(ev) {
        if (ev.data === "[DONE]") return [];
        const chunk = JSON.parse(ev.data) as OpenAIChunk & { error?: { message?: string; code?: unknown } };
        if (chunk.error) throw new ProviderError(502, chunk.error.message ?? "stream error", "openai");
        return [{ ...chunk, model: meta.model }];
      },
      end: () => [],
    };
  },

  errorMessage(status, body) {
    const m = (body as { error?: { message?: unknown } } | null)?.error?.message;
    if (typeof m === "string") return m;
    if (typeof body === "string" && body.trim()) return body.trim().slice(0, 500);
    return `OpenAI answered ${status}.`;
  },
};
