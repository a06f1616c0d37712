/**
 * HTTP gateway (moleculer-web): the OpenAI-compatible `/v1` API, the legacy
 * `/api/chat` and `/api/generate`, management routes and `/health`. Explicit
 * aliases only, from one table (services/api/routes.ts) whose handlers get
 * the gateway object (services/api/gateway.ts). In front of moleculer-web:
 * the method table (lib/http/methods.ts), then the fast lane for inference
 * (services/api/fast-lane.ts). Inference requests go api → balancer (this
 * process) → the chosen node (one hop over the transporter).
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Context, Service, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { healthHttpStatus, readinessOf, wantsReadiness } from "../lib/cluster/readiness";
import { LaneReceiver } from "../lib/cluster/lane-receiver";
import type { ErrorRegenerator, LaneEntry } from "../lib/cluster/token-lanes";
import type { RouterConfig } from "../lib/config";
import { methodGate } from "../lib/http/methods";
import { sendError } from "../lib/http/respond";
import { registerRouterMetrics } from "../lib/metrics/router-metrics";
import { AuthGateMixin, forgetCachedKeys, type GateConfig } from "../mixins/auth-gate.mixin";
import { fastLane } from "./api/fast-lane";
import { Gateway } from "./api/gateway";
import { ollamaListener } from "./api/ollama-server";
import { routerCore } from "../lib/core/router-core";
import { RouteTable, type FallbackDoc } from "../lib/models/aliases";
import type { RequestSummary } from "./api/recording";

/** `history.backlog`: where records go through, how many wait, since when the store is unreachable. */
interface HistoryBacklog {
  via: "stream" | "process";
  waiting: number | null;
  unreachable_since: string | null;
}
import { fastRoutes, gatewaySettings } from "./api/routes";

interface Settings {
  router: RouterConfig;
  port: number;
  ip: string;
  [key: string]: unknown;
}

interface Vars {
  server: Server;
  /** What the handlers need, built once (services/api/gateway.ts). */
  gateway: Gateway;
  /** Set by the gate mixin (mixins/auth-gate.mixin.ts). */
  gate: GateConfig;
  /** A replica has copied the aliases (followRoutes). */
  routesCopied: boolean;
  /** Ollama's API on its own port (services/api/ollama-server.ts), when LLM_ROUTER_OLLAMA_PORT is set. */
  ollama: Server | null;
}

interface Methods {
  drain(timeoutMs: number): Promise<void>;
  stopAccepting(): void;
  followRoutes(): Promise<void>;
}

type This = Service<Settings> & Vars & Methods;

/** Connections waiting to be accepted (the kernel caps it at net.core.somaxconn). */
const LISTEN_BACKLOG = 8192;

// `merged` (run once the mixins are merged, before moleculer-web reads the settings) is missing from Moleculer's types
const ApiService: ServiceSchema<Settings, Methods, Vars> & {
  merged(this: Service, schema: { settings?: object; events?: object }): void;
} = {
  name: "api",
  mixins: [ApiGateway, AuthGateMixin],

  // what depends on the environment is set in `merged`, when the service is created (gatewaySettings)
  settings: {
    log4XXResponses: false,
    logRequestParams: null,
    logResponseData: null,
    logRequest: null,
    logResponse: null,
    onError: (_req: IncomingMessage, res: ServerResponse, err: Error) => sendError(res, err),
  } as unknown as Settings,

  merged(this: Service, schema) {
    schema.settings = { ...schema.settings, ...gatewaySettings() };
    // a node's token lane to this process (lib/cluster/token-lanes.ts): an event group of its own, so that
    // a node's `lanes.chunks` for this process reaches it alone
    schema.events = {
      ...schema.events,
      "lanes.chunks": {
        group: this.broker.nodeID,
        handler(this: This, ctx: Context<{ entries: LaneEntry[] }>) {
          routerCore(this.broker).lanes?.deliver(ctx.nodeID!, ctx.params.entries);
        },
      },
    };
  },

  actions: {
    /** The key service changed a key: forget the keys this gateway keeps (it waits for this before it answers). */
    forgetKeys: {
      visibility: "public",
      params: { change: { type: "object", optional: true } },
      handler(this: This, ctx: Context<{ change?: { key: string; priority: number } }>) {
        forgetCachedKeys();
        // a key's new priority: its requests waiting in this process's queue take it
        const change = ctx.params.change;
        if (change) routerCore(this.broker).balancer?.reprioritize(change.key, change.priority);
        return true;
      },
    },

    /** This process's metrics, for the process of the same router that a scrape reached (services/api/metrics-routes.ts). */
    metricsSnapshot: {
      visibility: "public",
      handler(this: This) {
        this.gateway.recordEnded();
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
        const [nodes, queue, history, ready] = await Promise.all([
          local("registry") ? ctx.call<{ online: number; total: number }>("registry.summary") : null,
          local("balancer") ? ctx.call<{ queued: number }>("balancer.stats").then((s) => s.queued) : null,
          // how far behind history is: records waiting (in the stream, or in this process), since when the store is unreachable
          local("history") ? ctx.call<HistoryBacklog>("history.backlog") : null,
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
          history,
          waiting_for: ready.waiting_for,
          // router processes this one sees (itself included): peers and replicas on the transporter
          routers: new Set(
            (ctx.broker.registry.getServiceList({ onlyAvailable: true }) as Array<{ name: string; nodeID: string }>)
              .filter((s) => s.name === "api")
              .map((s) => s.nodeID),
          ).size,
        };
      },
    },
  },

  events: {
    // the streams open over its lane break (as Moleculer's own streams do)
    "$node.disconnected"(this: This, ctx: Context<{ node: { id: string } }>) {
      routerCore(this.broker).lanes?.nodeLost(ctx.params.node.id);
    },
    "registry.changed"(this: This) {
      this.gateway.live.signal("nodes", 2000, () => this.broker.call("registry.list"));
    },
    // requests another api process (a router replica) finished, for the dashboards connected here
    "api.requests"(this: This, ctx: Context<{ requests: RequestSummary[] }>) {
      if (ctx.nodeID !== this.broker.nodeID) this.gateway.recorder.showRemote(ctx.params.requests);
    },
    // a router replica keeps a copy of the aliases and fallbacks, for its request path
    "aliases.changed"(this: This) {
      void this.followRoutes();
    },
    "$services.changed"(this: This) {
      if (!this.routesCopied) void this.followRoutes();
    },
    "models.progress"(this: This) {
      this.gateway.live.signal("tasks", 1000, () => ({}));
    },
    // logged once every local service has started, so the URL means "ready"
    "$broker.started"(this: This) {
      void this.followRoutes();
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
    /**
     * A replica without the aliases service (SERVICES=gateway) copies the
     * aliases and fallbacks from one that has it: at start (or when such a
     * service appears) and after every change.
     */
    async followRoutes(this: This) {
      const registry = this.broker.registry;
      // the aliases service here keeps the copy itself; none anywhere yet: `$services.changed` asks again
      const anywhere = registry.getActionEndpoints("aliases.list") as unknown as
        { hasAvailable(): boolean } | undefined;
      if (registry.hasService("aliases", this.broker.nodeID) || !anywhere?.hasAvailable()) return;
      try {
        const set = await this.broker.call<{
          aliases: Array<{ alias: string; model: string; fallbacks: string[]; created_at: string }>;
          fallbacks: FallbackDoc[];
        }>("aliases.list");
        const aliases = set.aliases.map((a) => ({
          alias: a.alias,
          model: a.model,
          fallbacks: a.fallbacks,
          createdAt: a.created_at,
        }));
        routerCore(this.broker).routes = new RouteTable(aliases, set.fallbacks);
        this.routesCopied = true;
      } catch (err) {
        this.logger.warn(`could not copy the aliases: ${(err as Error).message}`);
      }
    },

    /**
     * SIGTERM: stop accepting connections, end the dashboard's event streams,
     * and wait up to `timeoutMs` for the requests and streams in flight.
     */
    async drain(this: This, timeoutMs: number) {
      this.stopAccepting();
      await this.gateway.drain(timeoutMs);
    },

    /**
     * No new connections; idle kept-alive ones are closed, the rest after
     * their request. Asked before moleculer-web has opened the port (a stop
     * while the services start), it closes the port as soon as it opens.
     */
    stopAccepting(this: This) {
      if (this.ollama?.listening) this.ollama.close();
      this.ollama?.closeIdleConnections();
      if (this.server.listening) this.server.close();
      // after moleculer-web's own `listening` callback, which reads the address
      else this.server.once("listening", () => setImmediate(() => this.server.listening && this.server.close()));
      this.server.closeIdleConnections();
    },
  },

  created(this: This) {
    this.routesCopied = false;
    this.gateway = new Gateway(this.broker, this.logger, this.settings.router, this.gate);
    // nodes on the transporter send this process's streams over token lanes (lib/cluster/token-lanes.ts)
    if (this.broker.transit) {
      const regenerator = (this.broker as unknown as { errorRegenerator: ErrorRegenerator }).errorRegenerator;
      routerCore(this.broker).lanes = new LaneReceiver((plain, sender) => regenerator.restore(plain, { sender }));
    }
    registerRouterMetrics(this.broker.metrics);
    // moleculer-web made the server (its `created` ran first): the method table and the fast lane go in front of it
    const web = this.server.listeners("request")[0] as RequestListener;
    this.server.removeAllListeners("request");
    const cors = this.settings.cors !== undefined;
    const lane = fastLane(this.gateway, fastRoutes(), web, { maxBodySize: this.settings.router.maxBodySize, cors });
    this.server.on("request", methodGate(lane, { cors }));
    // moleculer-web listens with Node's default backlog (511): a burst of new connections on a busy router
    // overflowed it (clients got ECONNRESET at 5,000 streams opened at once, bench/RESULTS.md)
    const listen = this.server.listen.bind(this.server) as (o: object, cb?: () => void) => Server;
    (this.server as unknown as { listen: unknown }).listen = (port: number, host: string, cb?: () => void) =>
      listen({ port, host, backlog: LISTEN_BACKLOG }, cb);
    this.ollama =
      this.settings.router.ollamaPort === null
        ? null
        : createServer(ollamaListener(this.gateway, this.settings.router.maxBodySize));
  },

  /** Ollama's listener opens beside the main one (moleculer-web's `started` opens that). */
  async started(this: This) {
    const ollama = this.ollama;
    if (!ollama) return;
    const { ollamaPort, host } = this.settings.router;
    await new Promise<void>((resolve, reject) => {
      ollama.once("error", reject);
      ollama.listen(ollamaPort!, host, () => {
        ollama.off("error", reject);
        resolve();
      });
    });
    const addr = ollama.address() as AddressInfo;
    const shown = addr.address === "0.0.0.0" || addr.address === "::" ? "localhost" : addr.address;
    this.logger.info(`Ollama API listening on http://${shown}:${addr.port}`);
  },

  stopped(this: This) {
    if (this.ollama?.listening) this.ollama.close();
    this.gateway.close();
  },
};

export default ApiService;
