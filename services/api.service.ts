/**
 * HTTP gateway (moleculer-web): the OpenAI-compatible `/v1` API, the legacy
 * `/api/chat` and `/api/generate`, management routes and `/health`. Explicit
 * aliases only. Inference requests go api → balancer (local) → the chosen
 * node's inference service (one hop over the transporter).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { authConfig, historyConfig, metricsConfig, routerConfig } from "../lib/config";
import { RequestTrace, type RequestKind } from "../lib/history/record";
import { jsonBody } from "../lib/http/body";
import { methodGate } from "../lib/http/methods";
import { clientIpResolver } from "../lib/http/client-ip";
import { registerRouterMetrics } from "../lib/metrics/router-metrics";
import { toOpenAIError } from "../lib/openai/errors";
import { sendError, sendJson } from "../lib/http/respond";
import { modelNotFound } from "../lib/openai/errors";
import { chatSchema, completionSchema } from "../lib/openai/schemas";
import type { ModelEntry } from "../lib/cluster/node-table";
import { accountAliases } from "./api/accounts-routes";
import { nodeAliases } from "./api/node-routes";
import { openAIResponder } from "./api/inference";
import type { ApiMethods, ApiSettings, ApiThis, ApiVars, Responder } from "./api/types";
import { historyAliases } from "./api/history-routes";
import { modelAliases } from "./api/model-routes";
import { metricsAliases } from "./api/metrics-routes";
import { dashboardAliases, rootAliases } from "./api/dashboard-static";
import { LiveHub } from "../lib/http/live-hub";
import { healthHttpStatus, readinessOf, wantsReadiness } from "../lib/cluster/readiness";
import { AuthGateMixin, forgetCachedKeys, type AuthedRequest } from "../mixins/auth-gate.mixin";
import { fastLane, fastRoutes } from "./api/fast-lane";
import { inferenceAliases } from "./api/inference-routes";
import { RequestRecorder, type RequestSummary } from "./api/recording";

type Req = AuthedRequest & { $ctx: Context; body?: unknown; $params?: Record<string, string> };
type Settings = ApiSettings;
type Vars = ApiVars;
type Methods = ApiMethods;
type This = ApiThis;
export type { ApiThis };

// every route: explicit aliases only, and the gate (mixins/auth-gate.mixin.ts) checks the route table
const quiet = {
  logging: false,
  autoAliases: false,
  mappingPolicy: "restrict" as const,
  authentication: "authenticate",
};

/** Every route answers errors in OpenAI's shape. */
function onError(this: This, _req: IncomingMessage, res: ServerResponse, err: Error) {
  sendError(res, err);
}

/** Whether the request's API key may see `model` (no allow-list: every model). */
function visibleTo(req: Req, model: string): boolean {
  const auth = req.$auth;
  return !(auth?.kind === "apiKey" && auth.key?.allowedModels && !auth.key.allowedModels.includes(model));
}

function modelObject(m: ModelEntry) {
  return { id: m.id, object: "model", created: m.created, owned_by: "llm-router", nodes: m.nodes };
}

/** Models on nodes that serve now, then the configured clouds' models. */
async function allModels(ctx: Context) {
  const local = await ctx.call<ModelEntry[]>("registry.models");
  const cloud = ctx.broker.registry.hasService("cloud", ctx.broker.nodeID)
    ? await ctx.call<string[]>("cloud.models")
    : [];
  return [
    ...local.map(modelObject),
    ...cloud.map((id) => ({ id, object: "model", created: 0, owned_by: id.split(":")[0], nodes: [] as string[] })),
  ];
}

/** The gateway's settings that come from the environment (read when the service is created): port, CORS, routes. */
export function gatewaySettings(): Partial<Settings> {
  const router = routerConfig();
  const corsOrigins = authConfig().corsOrigins;
  // one JSON parser for every route that takes a body (lib/http/body.ts): size and depth bounded, errors are 4xx
  const json = { bodyParsers: false as const, use: [jsonBody({ limit: router.maxBodySize })] };
  return {
    router,
    port: router.port,
    ip: router.host,
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
        ...json,
        onError,
        aliases: {
          ...inferenceAliases["/v1"],
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
        ...json,
        onError,
        aliases: {
          ...inferenceAliases["/api"],
          "GET /playground/models"(this: This, req: Req, res: ServerResponse) {
            this.runHandler(res, async () => sendJson(res, 200, { object: "list", data: await allModels(req.$ctx) }));
          },
          // the dashboard's live updates: nodes, finished requests, task progress
          "GET /dashboard/events"(this: This, req: Req, res: ServerResponse) {
            this.live.add(res);
            req.$ctx
              .call("registry.list")
              .then((nodes) => this.live.send("nodes", nodes, res))
              .catch(() => undefined);
          },
          ...nodeAliases,
          ...modelAliases,
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
          ...rootAliases,
          ...metricsAliases,
        },
      },
      {
        path: "/dashboard",
        ...quiet,
        bodyParsers: false,
        onError,
        aliases: dashboardAliases,
      },
    ],
  };
}

// `merged` (run once the mixins are merged, before moleculer-web reads the settings) is missing from Moleculer's types
const ApiService: ServiceSchema<Settings, Methods, Vars> & { merged(schema: { settings?: object }): void } = {
  name: "api",
  mixins: [ApiGateway, AuthGateMixin],

  // what depends on the environment is set in `merged`, when the service is created (gatewaySettings)
  settings: {
    log4XXResponses: false,
    logRequestParams: null,
    logResponseData: null,
    logRequest: null,
    logResponse: null,
    onError,
  } as unknown as Settings,

  merged(schema) {
    schema.settings = { ...schema.settings, ...gatewaySettings() };
  },

  actions: {
    /** The key service changed a key: forget the keys this gateway keeps (it waits for this before it answers). */
    forgetKeys: {
      visibility: "public",
      handler() {
        forgetCachedKeys();
        return true;
      },
    },

    /** This process's metrics, for the process of the same router that a scrape reached (services/api/metrics-routes.ts). */
    metricsSnapshot: {
      visibility: "public",
      handler(this: This) {
        this.recordEnded();
        return this.broker.metrics.list();
      },
    },

    /**
     * `GET /health`: liveness, always 200, with readiness in the body
     * ("starting" and what it waits for until every local service and this
     * router's inference node are ready, then "ok"). `GET /health?ready=1`:
     * the same body, but 503 unless "ok" (a readiness probe).
     */
    health: {
      async handler(this: This, ctx: Context<{ ready?: unknown }>) {
        const local = (name: string) => ctx.broker.registry.hasService(name, ctx.broker.nodeID);
        const [nodes, queue, ready] = await Promise.all([
          local("registry") ? ctx.call<{ online: number; total: number }>("registry.summary") : null,
          local("balancer") ? ctx.call<{ queued: number }>("balancer.stats").then((s) => s.queued) : null,
          // a server that no longer listens is draining (SIGTERM)
          readinessOf(ctx.broker, !this.server.listening),
        ]);
        const status = healthHttpStatus(ready, wantsReadiness(ctx.params?.ready));
        if (status !== 200) (ctx.meta as { $statusCode?: number }).$statusCode = status;
        return {
          status: ready.status,
          node_id: ctx.broker.nodeID,
          uptime_s: Math.round(process.uptime()),
          nodes,
          queued_requests: queue,
          waiting_for: ready.waiting_for,
        };
      },
    },
  },

  events: {
    "registry.changed"(this: This) {
      this.live.signal("nodes", 2000, () => this.broker.call("registry.list"));
    },
    // requests another api process (a router replica) finished, for the dashboards connected here
    "api.requests"(this: This, ctx: Context<{ requests: RequestSummary[] }>) {
      if (ctx.nodeID !== this.broker.nodeID) this.recorder.showRemote(ctx.params.requests);
    },
    "models.progress"(this: This) {
      this.live.signal("tasks", 1000, () => ({}));
    },
    // logged once every local service has started, so the URL means "ready"
    "$broker.started"(this: This) {
      // a stop that began while the services were starting (SIGTERM) has closed the server: nothing to announce
      const addr = this.server.listening ? (this.server.address() as AddressInfo | string | null) : null;
      if (!addr || typeof addr === "string") return;
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
    runTraced(
      this: This,
      req: Req,
      res: ServerResponse,
      kind: RequestKind,
      work: (t: RequestTrace) => Promise<void>,
      responder: Responder = openAIResponder,
    ) {
      const auth = req.$auth;
      const trace = new RequestTrace({
        id: `req-${req.$ctx.id}`,
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
      this.inFlight++;
      // async, so that a synchronous throw (a bad body) is answered by the responder too
      (async () => work(trace))().then(
        () => this.finishTrace(trace, res.destroyed && !res.writableFinished ? 499 : 200, null),
        (err: unknown) => {
          const status = responder.error(res, err);
          if (status >= 500) this.logger.warn(`request failed (${status}): ${(err as Error)?.message ?? err}`);
          this.finishTrace(trace, status, toOpenAIError(err).body.error.message);
        },
      );
    },

    /** A request has ended: metrics, the dashboard's feed and history, a moment later (it counts as in flight until then). */
    finishTrace(this: This, trace: RequestTrace, status: number, error: string | null) {
      this.recorder.finish(trace, status, error);
    },

    /** Records what ended a moment ago now (a `/metrics` scrape sees every answer). */
    recordEnded(this: This) {
      this.recorder.recordEnded();
    },

    /**
     * SIGTERM: stop accepting connections, end the dashboard's event streams,
     * and wait up to `timeoutMs` for the requests and streams in flight.
     */
    async drain(this: This, timeoutMs: number) {
      this.stopAccepting();
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
    },

    /**
     * No new connections; idle kept-alive ones are closed, the rest after
     * their request. Asked before moleculer-web has opened the port (a stop
     * while the services start), it closes the port as soon as it opens.
     */
    stopAccepting(this: This) {
      if (this.server.listening) this.server.close();
      // after moleculer-web's own `listening` callback, which reads the address
      else this.server.once("listening", () => setImmediate(() => this.server.listening && this.server.close()));
      this.server.closeIdleConnections();
    },

    async listModels(this: This, req: Req, res: ServerResponse) {
      const models = await allModels(req.$ctx);
      sendJson(res, 200, { object: "list", data: models.filter((m) => visibleTo(req, m.id)) });
    },

    async getModel(this: This, req: Req, res: ServerResponse) {
      const id = req.$params?.id ?? "";
      const m = (await allModels(req.$ctx)).find((x) => x.id === id);
      if (!m || !visibleTo(req, id)) throw modelNotFound(id);
      sendJson(res, 200, m);
    },
  },

  created(this: This) {
    this.clientIp = clientIpResolver(metricsConfig().trustedProxies);
    this.historyMaxBodyBytes = historyConfig().maxBodyBytes;
    const limit = this.settings.router.maxTokensLimit;
    this.schemas = { chat: chatSchema(limit), completion: completionSchema(limit) };
    registerRouterMetrics(this.broker.metrics);
    // moleculer-web made the server (its `created` ran first): the fast lane goes in front of it
    const web = this.server.listeners("request")[0] as RequestListener;
    this.server.removeAllListeners("request");
    const cors = this.settings.cors !== undefined;
    // methods first (lib/http/methods.ts), then the fast lane, then moleculer-web
    const lane = fastLane(this, fastRoutes(inferenceAliases), web, {
      maxBodySize: this.settings.router.maxBodySize,
      cors,
    });
    this.server.on("request", methodGate(lane, { cors }));
    this.live = new LiveHub();
    this.inFlight = 0;
    this.onIdle = null;
    this.recorder = new RequestRecorder(this.broker, this.live, this.logger, (count) => {
      this.inFlight -= count;
      this.onIdle?.();
    });
  },

  stopped(this: This) {
    this.recorder.flush();
    this.live.close();
  },
};

export default ApiService;
