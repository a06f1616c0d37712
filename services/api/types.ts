/**
 * The api service's shape (its settings, the state it keeps and its methods)
 * and the Responder interface: what services/api/*.ts need of the api,
 * kept apart from services/api.service.ts so that nothing imports that file
 * back (no import cycle).
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Service } from "moleculer";
import type { RouterConfig } from "../../lib/config";
import type { RequestKind, RequestTrace } from "../../lib/history/record";
import type { OpenedStream, RelayResult } from "../../lib/http/respond";
import type { LiveHub } from "../../lib/http/live-hub";
import type { chatSchema, completionSchema } from "../../lib/openai/schemas";
import type { GateConfig } from "../../mixins/auth-gate.mixin";
import type { RequestRecorder } from "./recording";
import type { Req } from "./route-helpers";

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

export interface ApiSettings {
  router: RouterConfig;
  port: number;
  ip: string;
  [key: string]: unknown;
}

export interface ApiVars {
  schemas: { chat: ReturnType<typeof chatSchema>; completion: ReturnType<typeof completionSchema> };
  server: Server;
  /** The dashboard's event streams. */
  live: LiveHub;
  /** Inference requests being served now, and who waits for them to end (SIGTERM). */
  inFlight: number;
  onIdle: (() => void) | null;
  /** Metrics, the live feed and history for every request that ended (services/api/recording.ts). */
  recorder: RequestRecorder;
  /** The client's address: the socket's, or X-Forwarded-For from a trusted proxy (login throttling, history). */
  clientIp: (req: IncomingMessage) => string;
  /** How much of a request's and response's body history keeps. */
  historyMaxBodyBytes: number;
  /** What the gate reads of the configuration (mixins/auth-gate.mixin.ts sets it). */
  gate: GateConfig;
}

export interface ApiMethods {
  runTraced(
    req: Req,
    res: ServerResponse,
    kind: RequestKind,
    work: (trace: RequestTrace) => Promise<void>,
    responder?: Responder,
  ): void;
  finishTrace(trace: RequestTrace, status: number, error: string | null): void;
  recordEnded(): void;
  listModels(req: Req, res: ServerResponse): Promise<void>;
  getModel(req: Req, res: ServerResponse): Promise<void>;
  runHandler(res: ServerResponse, work: () => Promise<unknown>): void;
  checkModelAllowed(req: Req, model: string): void;
  drain(timeoutMs: number): Promise<void>;
  stopAccepting(): void;
}

export type ApiThis = Service<ApiSettings> & ApiVars & ApiMethods;
