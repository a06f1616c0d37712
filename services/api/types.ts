/**
 * Types the api's parts share: the request as the gateway sees it and the
 * Responder that writes answers in a client's API format.
 * Nothing here imports the parts back (no import cycle).
 */
import type { ServerResponse } from "node:http";
import type { Context } from "moleculer";
import type { OpenedStream, RelayResult } from "../../lib/http/respond";
import type { AuthedRequest } from "../../mixins/auth-gate.mixin";

export type Req = AuthedRequest & { $ctx: Context; body?: unknown; $params?: Record<string, string> };

/** What a responder says the client got, for history, when it is not the chunks it relayed (a Response object). */
export interface Answered {
  body: unknown;
  usage: { prompt_tokens?: number; completion_tokens?: number } | null;
}

/** Writes answers in the client's API format (OpenAI's, Anthropic's for `/v1/messages`, the Responses API's). */
export interface Responder {
  /**
   * Answers a finished completion (after any work it needs first: storing a
   * response); says what the client got when history should keep that instead.
   */
  json(res: ServerResponse, completion: unknown): void | Answered | Promise<void | Answered>;
  relay(
    res: ServerResponse,
    opened: OpenedStream,
    idleMs: number,
    observe: (chunk: unknown) => boolean,
  ): Promise<RelayResult & { answered?: Answered }>;
  error(res: ServerResponse, err: unknown): number;
}
