/**
 * Shared by the provider tests, whose cases for one cloud span several files
 * (requests and answers; parameters; the stand-in; the Messages API ingress):
 * SSE parsing, summaries of translated chunks, and per cloud the test config,
 * answer meta, request body, stream translation and fixture streams.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createParser } from "eventsource-parser";
import { anthropic } from "../../../../lib/providers/anthropic";
import { google } from "../../../../lib/providers/google";
import type {
  OpenAIChatRequest,
  OpenAIChunk,
  Provider,
  ProviderConfig,
  ResponseMeta,
  SseEvent,
} from "../../../../lib/providers/types";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export function sseEvents(raw: string): SseEvent[] {
  const events: SseEvent[] = [];
  createParser({ onEvent: (e) => events.push({ event: e.event, data: e.data }) }).feed(raw);
  return events;
}

export const contentOf = (chunks: OpenAIChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
export const finishes = (chunks: OpenAIChunk[]) =>
  chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean);
export const toolDeltas = (chunks: OpenAIChunk[]) => chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
/** An SSE event carrying `o` as JSON. */
export const data = (o: unknown): SseEvent => ({ data: JSON.stringify(o) });

export const text = (t: string) => ({ type: "text", text: t });
export const user = (content: Json) => ({ role: "user" as const, content });
export const WEATHER = { type: "object", properties: { location: { type: "string" } }, required: ["location"] };

/** The text of Google's stream-text.sse fixture. */
export const GOOGLE_STORY =
  "Once upon a time, in a quiet village tucked between misty hills, lived a girl named Elara" +
  " who owned a backpack that could talk. The end.";

/** One cloud's test setup: its fixtures are under test/fixtures/<provider.name>. */
function setup(provider: Provider, model: string, cfg: ProviderConfig, meta: ResponseMeta) {
  /** The upstream body for `req` (a user's "hi" to `model` unless it says otherwise). */
  const body = (req: Partial<OpenAIChatRequest>): Json =>
    provider.request({ model, messages: [user("hi")], ...req }, cfg).body;
  /** The error body() throws for `req`, or undefined. */
  const thrown = (req: Partial<OpenAIChatRequest>): Json => {
    try {
      body(req);
    } catch (e) {
      return e;
    }
    return undefined;
  };
  const fixtureEvents = (name: string) =>
    sseEvents(readFileSync(join(__dirname, "../../../fixtures", provider.name, name), "utf8"));
  /** A stream's events translated, end() included. */
  const translate = (events: SseEvent[]): OpenAIChunk[] => {
    const t = provider.stream(meta);
    return [...events.flatMap((e) => t.push(e)), ...t.end()];
  };
  return { cfg, meta, body, thrown, fixtureEvents, translate };
}

export const googleSetup = setup(
  google,
  "gemini-2.5-flash",
  { apiKey: "secret-key", baseUrl: "https://generativelanguage.googleapis.com/v1beta" },
  { id: "chatcmpl-abc", model: "google:gemini-2.5-flash", created: 1_700_000_000 },
);

export const anthropicSetup = setup(
  anthropic,
  "claude-sonnet-4-5",
  { apiKey: "secret-key", baseUrl: "https://api.anthropic.com" },
  { id: "chatcmpl-abc", model: "anthropic:claude-sonnet-4-5", created: 1_700_000_000 },
);
