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

/** Writes answers in the client's API format (OpenAI's, or Anthropic's for `/v1/messages`). */
export interface Responder {
  json(res: ServerResponse, completion: unknown): void;
  relay(
    res: ServerResponse,
    opened: OpenedStream,
    idleMs: number,
    observe: (chunk: unknown) => boolean,
  ): Promise<RelayResult>;
  error(res: ServerResponse, err: unknown): number;
}
