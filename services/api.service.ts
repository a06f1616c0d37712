/**
 * HTTP gateway (moleculer-web): the OpenAI-compatible `/v1` API, the legacy
 * `/api/chat` and `/api/generate`, management routes and `/health`. Explicit
 * aliases only. Inference requests go api → balancer (local) → the chosen
 * node's inference service (one hop over the transporter).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import type { Context, Service, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { authConfig, historyConfig, metricsConfig, routerConfig, type RouterConfig } from "../lib/config";
import { RequestTrace, StreamAssembler, type RequestKind } from "../lib/history/record";
import { clientIpResolver } from "../lib/http/client-ip";
import { recordRequest, registerRouterMetrics } from "../lib/metrics/router-metrics";
import { toOpenAIError } from "../lib/openai/errors";
import { openStream, relaySse, sendError, sendJson } from "../lib/http/respond";
import { isRetryable } from "../lib/routing/retry";
import { callUpstream } from "../lib/runtimes/openai-upstream";
import { affinityKey } from "../lib/routing/affinity-key";
import { modelNotFound } from "../lib/openai/errors";
import { embeddingToBase64 } from "../lib/openai/format";
import { chatJob, completionJob, embeddingJob } from "../lib/openai/jobs";
import { chatSchema, completionSchema, embeddingSchema, parseBody } from "../lib/openai/schemas";
import type { ModelEntry } from "../lib/cluster/node-table";
import type { ChatJob, CompletionJob } from "../lib/inference/types";
import type { Selection } from "./balancer.service";
import { accountAliases } from "./api/accounts-routes";
import { nodeAliases } from "./api/node-routes";
import { historyAliases } from "./api/history-routes";
import { metricsAliases } from "./api/metrics-routes";
import { AuthGateMixin, type AuthedRequest } from "../mixins/auth-gate.mixin";

type Req = AuthedRequest & { $ctx: Context; body?: unknown; $params?: Record<string, string> };
type Kind = "chat" | "completion";

interface Settings {
  router: RouterConfig;
  port: number;
  ip: string;
  [key: string]: unknown;
}

interface Vars {
  schemas: { chat: ReturnType<typeof chatSchema>; completion: ReturnType<typeof completionSchema> };
  server: import("node:http").Server;
}

interface Methods {
  generate(req: Req, res: ServerResponse, kind: Kind, trace: RequestTrace): Promise<void>;
  embeddings(req: Req, res: ServerResponse, trace: RequestTrace): Promise<void>;
  runTraced(req: Req, res: ServerResponse, kind: RequestKind, work: (trace: RequestTrace) => Promise<void>): void;
  finishTrace(trace: RequestTrace, status: number, error: string | null): void;
  listModels(req: Req, res: ServerResponse): Promise<void>;
  getModel(req: Req, res: ServerResponse): Promise<void>;
  runHandler(res: ServerResponse, work: () => Promise<unknown>): void;
  checkModelAllowed(req: Req, model: string): void;
}

type This = Service<Settings> & Vars & Methods;

const cfg = routerConfig();
const json = { json: { limit: cfg.maxBodySize, strict: true }, urlencoded: false };
// every route: explicit aliases only, and the gate (mixins/auth-gate.mixin.ts) checks the route table
const quiet = {
  logging: false,
  autoAliases: false,
  mappingPolicy: "restrict" as const,
  authentication: "authenticate",
};
const corsOrigins = authConfig().corsOrigins;
const history = historyConfig();
const clientIp = clientIpResolver(metricsConfig().trustedProxies);

/** Every route answers errors in OpenAI's shape. */
function onError(this: This, _req: IncomingMessage, res: ServerResponse, err: Error) {
  sendError(res, err);
}

/** Whether the request's API key may see `model` (no allow-list: every model). */
function visibleTo(req: Req, model: string): boolean {
  const auth = req.$auth;
  return !(auth?.kind === "apiKey" && auth.key?.allowedModels && !auth.key.allowedModels.includes(model));
}

/** The extra last chunk of `include_usage`: usage and no choices. */
function isUsageChunk(chunk: unknown): boolean {
  const c = chunk as { usage?: unknown; choices?: unknown[] };
  return !!c.usage && (!c.choices || c.choices.length === 0);
}

function modelObject(m: ModelEntry) {
  return { id: m.id, object: "model", created: m.created, owned_by: "llm-router", nodes: m.nodes };
}

const ApiService: ServiceSchema<Settings, Methods, Vars> = {
  name: "api",
  mixins: [ApiGateway, AuthGateMixin],

  settings: {
    router: cfg,
    port: cfg.port,
    ip: cfg.host,
    log4XXResponses: false,
    logRequestParams: null,
    logResponseData: null,
    logRequest: null,
    logResponse: null,
    onError,
    // CORS stays off unless origins are listed
    cors: corsOrigins.length
      ? {
          origin: corsOrigins,
          methods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
          allowedHeaders: ["Authorization", "Content-Type", "X-API-Key"],
          credentials: false,
          maxAge: 600,
        }
      : undefined,
    routes: [
      {
        path: "/v1",
        ...quiet,
        bodyParsers: json,
        onError,
        aliases: {
          "POST /chat/completions"(this: This, req: Req, res: ServerResponse) {
            this.runTraced(req, res, "chat", (t) => this.generate(req, res, "chat", t));
          },
          "POST /completions"(this: This, req: Req, res: ServerResponse) {
            this.runTraced(req, res, "completion", (t) => this.generate(req, res, "completion", t));
          },
          "POST /embeddings"(this: This, req: Req, res: ServerResponse) {
            this.runTraced(req, res, "embedding", (t) => this.embeddings(req, res, t));
          },
          "GET /models"(this: This, req: Req, res: ServerResponse) {
            this.runHandler(res, () => this.listModels(req, res));
          },
          "GET /models/*id"(this: This, req: Req, res: ServerResponse) {
            this.runHandler(res, () => this.getModel(req, res));
          },
        },
      },
      {
        path: "/api",
        ...quiet,
        bodyParsers: json,
        onError,
        aliases: {
          // legacy endpoints of the seed: OpenAI-format answers
          "POST /chat"(this: This, req: Req, res: ServerResponse) {
            this.runTraced(req, res, "legacy", (t) => this.generate(req, res, "chat", t));
          },
          "POST /generate"(this: This, req: Req, res: ServerResponse) {
            this.runTraced(req, res, "legacy", (t) => this.generate(req, res, "completion", t));
          },
          ...nodeAliases,
          ...historyAliases,
          ...accountAliases,
        },
      },
      {
        path: "/",
        ...quiet,
        bodyParsers: false,
        onError,
        aliases: {
          "GET /health": "api.health",
          ...metricsAliases,
        },
      },
    ],
  },

  actions: {
    health: {
      async handler(this: This, ctx: Context) {
        const local = (name: string) => ctx.broker.registry.hasService(name, ctx.broker.nodeID);
        const nodes = local("registry") ? await ctx.call<{ online: number; total: number }>("registry.summary") : null;
        const queue = local("balancer") ? (await ctx.call<{ queued: number }>("balancer.stats")).queued : null;
        return {
          status: "ok",
          node_id: ctx.broker.nodeID,
          uptime_s: Math.round(process.uptime()),
          nodes,
          queued_requests: queue,
        };
      },
    },
  },

  events: {
    // logged once every local service has started, so the URL means "ready"
    "$broker.started"(this: This) {
      const addr = this.server.address() as AddressInfo;
      const host = addr.address === "0.0.0.0" || addr.address === "::" ? "localhost" : addr.address;
      this.logger.info(`LLM Router listening on http://${host}:${addr.port}`);
      this.logger.info(
        `Log in with POST /api/auth/login {"username","password"}, then create an API key with POST /api/api-keys (or: npx llm-router key create --name NAME).`,
      );
    },
  },
  methods: {
    /** Runs an async handler; whatever it throws becomes an OpenAI error. */
    runHandler(this: This, res: ServerResponse, work: () => Promise<unknown>) {
      work().catch((err: unknown) => {
        const status = sendError(res, err);
        if (status >= 500) this.logger.warn(`request failed (${status}): ${(err as Error)?.message ?? err}`);
      });
    },

    /**
     * Serves an inference request and, when it has ended (answered, failed or
     * abandoned), records it: metrics now, history as an event the client
     * never waits for.
     */
    runTraced(this: This, req: Req, res: ServerResponse, kind: RequestKind, work: (t: RequestTrace) => Promise<void>) {
      const auth = req.$auth;
      const trace = new RequestTrace({
        id: `req-${req.$ctx.id}`,
        endpoint: ((req as Req & { originalUrl?: string }).originalUrl ?? req.url ?? "").split("?")[0],
        kind,
        clientIp: clientIp(req),
        apiKey: auth?.kind === "apiKey" && auth.key ? auth.key : null,
        body: req.body,
        maxBodyBytes: history.maxBodyBytes,
      });
      work(trace).then(
        () => this.finishTrace(trace, res.destroyed && !res.writableFinished ? 499 : 200, null),
        (err: unknown) => {
          const status = sendError(res, err);
          if (status >= 500) this.logger.warn(`request failed (${status}): ${(err as Error)?.message ?? err}`);
          this.finishTrace(trace, status, toOpenAIError(err).body.error.message);
        },
      );
    },

    finishTrace(this: This, trace: RequestTrace, status: number, error: string | null) {
      const rec = trace.record(status, error);
      recordRequest(this.broker.metrics, {
        model: rec.model,
        node: rec.node_id,
        status,
        durationMs: rec.duration_ms,
        ttftMs: rec.ttft_ms,
        tokensIn: rec.tokens_in,
        tokensOut: rec.tokens_out,
        retries: rec.retries,
      });
      if (history.enabled) {
        this.broker.emit("history.record", rec).catch((err: Error) => this.logger.warn(`history: ${err.message}`));
      }
    },

    async generate(this: This, req: Req, res: ServerResponse, kind: Kind, trace: RequestTrace) {
      const ctx = req.$ctx;
      const job: ChatJob | CompletionJob =
        kind === "chat"
          ? chatJob(parseBody(this.schemas.chat, req.body))
          : completionJob(parseBody(this.schemas.completion, req.body));
      trace.model = job.model;
      trace.stream = job.stream;
      this.checkModelAllowed(req, job.model);
      // usage is always asked for (history and metrics count tokens) and passed on only when the client asked
      const clientWantsUsage = job.includeUsage;
      job.includeUsage = true;
      const { maxRetries, streamIdleTimeoutSecs } = this.settings.router;
      // external runtimes are cancelled by aborting the HTTP call; nodes by an explicit cancel
      let upstream = new AbortController();
      const cancelOn = (target: Selection) =>
        target.runtime
          ? upstream.abort()
          : ctx
              .call("inference.cancel", { requestId: job.requestId }, { nodeID: target.nodeID })
              .catch(() => undefined);
      let current: Selection | null = null;
      res.once("close", () => {
        if (!res.writableFinished && current) cancelOn(current);
      });

      // hashed once, and only for the strategy that uses it
      const conversation =
        this.settings.router.balancerMode === "affinity"
          ? affinityKey(job.model, job.user, "messages" in job ? job.messages : undefined)
          : undefined;
      const tried: string[] = [];
      let lastError: unknown;
      for (let attempt = 0; ; attempt++) {
        let target: Selection;
        try {
          target = await ctx.call<Selection, object>("balancer.select", {
            model: job.model,
            exclude: tried,
            affinityKey: conversation,
          });
        } catch (err) {
          // every node that had the model failed: the client hears about the failure, not "no node"
          throw lastError ?? err;
        }
        tried.push(target.nodeID);
        trace.attempt(target.nodeID, target.machineName);
        current = target;
        upstream = new AbortController();
        res.setHeader("X-Router-Node", target.nodeID);
        let outcome: "ok" | "node_failed" | "client_error" = "node_failed";
        let ttftMs: number | undefined;
        const startedAt = performance.now();
        try {
          const result = target.runtime
            ? await callUpstream(target.runtime, kind, job, upstream.signal)
            : await ctx.call<unknown, ChatJob | CompletionJob>(`inference.${kind}`, job, { nodeID: target.nodeID });
          if (!job.stream) {
            trace.firstByte();
            trace.answered(result);
            sendJson(res, 200, result);
            outcome = "ok";
            ttftMs = performance.now() - startedAt;
            return;
          }
          // a stream counts as started once its first chunk arrives; failing before that is retried
          const opened = await openStream(result as Readable, streamIdleTimeoutSecs * 1000);
          outcome = "ok";
          ttftMs = performance.now() - startedAt;
          trace.firstByte();
          const assembled = new StreamAssembler();
          const relay = await relaySse(res, opened, streamIdleTimeoutSecs * 1000, (chunk) => {
            assembled.add(chunk);
            return clientWantsUsage || !isUsageChunk(chunk);
          });
          trace.answered(assembled.body(), assembled.usage);
          if (relay.clientClosed || relay.error) cancelOn(target);
          if (relay.error) {
            outcome = "node_failed";
            throw relay.error; // recorded as failed; the client already has the error event
          }
          return;
        } catch (err) {
          const retry = isRetryable(err);
          outcome = retry ? "node_failed" : "client_error";
          if (!retry || attempt >= maxRetries || res.headersSent || res.destroyed) throw err;
          if (!job.stream) trace.answered(null);
          cancelOn(target);
          lastError = err;
          this.logger.warn(
            `Node ${target.nodeID} failed (${(err as Error)?.message}); retrying ${job.requestId} elsewhere`,
          );
        } finally {
          ctx.broker.broadcastLocal("router.request.finished", { nodeID: target.nodeID, outcome, ttftMs });
        }
      }
    },

    async embeddings(this: This, req: Req, res: ServerResponse, trace: RequestTrace) {
      const ctx = req.$ctx;
      const body = parseBody(embeddingSchema, req.body);
      const job = embeddingJob(body);
      trace.model = job.model;
      this.checkModelAllowed(req, job.model);
      const target = await ctx.call<Selection, { model: string }>("balancer.select", { model: job.model });
      trace.attempt(target.nodeID, target.machineName);
      res.setHeader("X-Router-Node", target.nodeID);
      try {
        type Embeddings = { data: Array<{ embedding: number[] | string }> };
        const result = target.runtime
          ? ((await callUpstream(
              target.runtime,
              "embeddings",
              job,
              AbortSignal.timeout(this.settings.router.requestTimeoutSecs * 1000),
            )) as Embeddings)
          : await ctx.call<Embeddings, typeof job>("inference.embeddings", job, { nodeID: target.nodeID });
        if (body.encoding_format === "base64") {
          for (const d of result.data) d.embedding = embeddingToBase64(d.embedding as number[]);
        }
        trace.firstByte();
        // the vectors are not worth keeping: their count and usage are
        const usage = (result as { usage?: { prompt_tokens?: number } }).usage;
        trace.answered({ object: "list", embeddings: result.data.length, usage }, usage);
        sendJson(res, 200, result);
      } finally {
        ctx.broker.broadcastLocal("router.request.finished", { nodeID: target.nodeID, outcome: "other" });
      }
    },

    async listModels(this: This, req: Req, res: ServerResponse) {
      const models = await req.$ctx.call<ModelEntry[]>("registry.models");
      sendJson(res, 200, { object: "list", data: models.filter((m) => visibleTo(req, m.id)).map(modelObject) });
    },

    async getModel(this: This, req: Req, res: ServerResponse) {
      const id = req.$params?.id ?? "";
      const models = await req.$ctx.call<ModelEntry[]>("registry.models");
      const m = models.find((x) => x.id === id);
      if (!m || !visibleTo(req, id)) throw modelNotFound(id);
      sendJson(res, 200, modelObject(m));
    },
  },

  created(this: This) {
    const limit = this.settings.router.maxTokensLimit;
    this.schemas = { chat: chatSchema(limit), completion: completionSchema(limit) };
    registerRouterMetrics(this.broker.metrics);
  },
};

export default ApiService;
