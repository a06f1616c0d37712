/**
 * The gateway object: what the api's route handlers need, built once when
 * the api service is created and handed to every handler as its first
 * argument (services/api/routes.ts). Handlers never reach into the service.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServiceBroker } from "moleculer";
import type { RouterConfig } from "../../lib/config";
import { historyConfig, metricsConfig } from "../../lib/config";
import { RequestTrace, type RequestKind } from "../../lib/history/record";
import { clientIpResolver } from "../../lib/http/client-ip";
import { holdEnd, type HeldEnd } from "../../lib/http/hold-end";
import { LiveHub } from "../../lib/http/live-hub";
import { sendError } from "../../lib/http/respond";
import { apiError, toOpenAIError } from "../../lib/openai/errors";
import { chatSchema, completionSchema } from "../../lib/openai/schemas";
import type { GateConfig } from "../../mixins/auth-gate.mixin";
import { openAIResponder } from "./openai-responder";
import { contextFrom, endSpan, SpanKind, startSpan, tracingOn } from "../../lib/telemetry/tracing";
import { RequestRecorder } from "./recording";
import type { Req, Responder } from "./types";

type Logger = ServiceBroker["logger"];

/** A route's handler: what it needs comes in the gateway object. */
export type Handler = (gw: Gateway, req: Req, res: ServerResponse) => void;

export class Gateway {
  readonly schemas: { chat: ReturnType<typeof chatSchema>; completion: ReturnType<typeof completionSchema> };
  /** The dashboard's event streams. */
  readonly live = new LiveHub();
  /** Metrics, the live feed and history for every request that ended (services/api/recording.ts). */
  readonly recorder: RequestRecorder;
  /** The client's address: the socket's, or X-Forwarded-For from a trusted proxy (login throttling, history). */
  readonly clientIp: (req: IncomingMessage) => string;
  /** How much of a request's and response's body history keeps. */
  private readonly historyMaxBodyBytes: number;
  /** Inference requests being served now, and who waits for them to end (SIGTERM). */
  private inFlight = 0;
  private onIdle: (() => void) | null = null;

  constructor(
    readonly broker: ServiceBroker,
    readonly logger: Logger,
    /** LLM_ROUTER_* settings of the request path. */
    readonly router: RouterConfig,
    /** What the gate reads of the configuration (mixins/auth-gate.mixin.ts). */
    readonly gate: GateConfig,
  ) {
    this.schemas = { chat: chatSchema(router.maxTokensLimit), completion: completionSchema(router.maxTokensLimit) };
    this.clientIp = clientIpResolver(metricsConfig().trustedProxies);
    this.historyMaxBodyBytes = historyConfig().maxBodyBytes;
    this.recorder = new RequestRecorder(broker, this.live, logger, (count) => {
      this.inFlight -= count;
      this.onIdle?.();
    });
  }

  /** Runs an async handler; whatever it throws becomes an OpenAI error. */
  runHandler(res: ServerResponse, work: () => Promise<unknown>): void {
    work().catch((err: unknown) => {
      const status = sendError(res, err);
      if (status >= 500) this.logger.warn(`request failed (${status}): ${(err as Error)?.message ?? err}`);
    });
  }

  /**
   * Serves an inference request and, when it has ended (answered, failed or
   * abandoned), records it: metrics now, history as an event the client
   * never waits for, or, with the history stream, committed there before the
   * answer's last bytes go out.
   */
  runTraced(
    req: Req,
    res: ServerResponse,
    kind: RequestKind,
    work: (t: RequestTrace) => Promise<void>,
    responder: Responder = openAIResponder,
  ): void {
    const auth = req.$auth;
    const id = `req-${req.$ctx.id}`;
    // the history record's id, as OpenAI's answers name theirs
    res.setHeader("X-Request-Id", id);
    const trace = new RequestTrace({
      id,
      endpoint: ((req as Req & { originalUrl?: string }).originalUrl ?? req.url ?? "").split("?")[0],
      kind,
      clientIp: this.clientIp(req),
      apiKey:
        auth?.kind === "apiKey" && auth.key
          ? auth.key
          : auth?.kind === "user"
            ? { id: "playground", name: "dashboard playground", owner: auth.claims.sub }
            : null,
      body: req.body,
      maxBodyBytes: this.historyMaxBodyBytes,
    });
    if (tracingOn()) {
      // a child of the client's trace when it sent a W3C traceparent
      trace.span = startSpan(
        `${req.method} ${trace.endpoint}`,
        contextFrom(req.headers as Record<string, unknown>),
        { "http.request.method": req.method ?? "", "url.path": trace.endpoint, "llm_router.request_id": id },
        SpanKind.SERVER,
      );
    }
    if (req.$meter) {
      // the tokens it uses count against its key's limits as they flow; ended with the answer's usage
      req.$meter.claimed = true;
      trace.meter = req.$meter;
    }
    this.inFlight++;
    const held = this.recorder.commits() ? holdEnd(res) : null;
    // async, so that a synchronous throw (a bad body) is answered by the responder too
    (async () => work(trace))().then(
      () => this.ended(trace, held, res.destroyed && !res.writableFinished ? 499 : 200, null),
      (err: unknown) => {
        const status = responder.error(res, err);
        if (status >= 500) this.logger.warn(`request failed (${status}): ${(err as Error)?.message ?? err}`);
        this.ended(trace, held, status, toOpenAIError(err).body.error.message);
      },
    );
  }

  /** Records an ended request; a held answer ends once its record is committed. */
  private ended(trace: RequestTrace, held: HeldEnd | null, status: number, error: string | null): void {
    trace.meter?.end(trace.tokensUsed());
    if (trace.span) endSpan(trace.span, trace.spanAttributes(status), status >= 500 ? error : null);
    const committed = this.recorder.finish(trace, status, error);
    if (!held) return;
    if (committed) void committed.finally(() => held.release());
    else held.release();
  }

  /** Records what ended a moment ago now (a `/metrics` scrape sees every answer). */
  recordEnded(): void {
    this.recorder.recordEnded();
  }

  /** 403 when the request's API key may not use `model`. */
  checkModelAllowed(req: Req, model: string): void {
    if (!this.visibleTo(req, model)) {
      throw apiError(403, `This API key may not use the model '${model}'.`, "model_not_allowed", { param: "model" });
    }
  }

  /** Whether the request's API key may see `model` (no allow-list: every model). */
  visibleTo(req: Req, model: string): boolean {
    const auth = req.$auth;
    return !(auth?.kind === "apiKey" && auth.key?.allowedModels && !auth.key.allowedModels.includes(model));
  }

  /**
   * SIGTERM: end the dashboard's event streams and wait up to `timeoutMs`
   * for the requests and streams in flight (the service has stopped taking
   * connections).
   */
  async drain(timeoutMs: number): Promise<void> {
    this.live.close();
    if (this.inFlight > 0) {
      this.logger.warn(`Draining: finishing ${this.inFlight} request(s) (at most ${timeoutMs / 1000} s)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.onIdle = () => {
          if (this.inFlight > 0) return;
          clearTimeout(timer);
          resolve();
        };
      });
      this.onIdle = null;
    }
    this.recorder.flush();
  }

  /** The api is stopping: what waits for other processes goes now. */
  close(): void {
    this.recorder.flush();
    this.live.close();
  }
}
