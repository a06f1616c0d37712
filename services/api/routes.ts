/**
 * Every route's handler, in one table keyed as the route table of
 * lib/auth/routes.ts keys its rows ("POST /v1/chat/completions"): what a
 * route requires is there, what serves it is here (a test checks that the two
 * agree). moleculer-web's aliases and the fast lane are both generated from
 * it; handlers get the gateway object (services/api/gateway.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { accessFor, routePath } from "../../lib/auth/routes";
import { authConfig, routerConfig, type RouterConfig } from "../../lib/config";
import { jsonBody } from "../../lib/http/body";
import { sendError } from "../../lib/http/respond";
import { accountAliases } from "./accounts-routes";
import { aliasAliases } from "./alias-routes";
import { auditAliases } from "./audit-routes";
import { auditWhenAnswered } from "./audit-trail";
import { dashboardAliases, rootAliases } from "./dashboard-static";
import type { Gateway } from "./gateway";
import { historyAliases } from "./history-routes";
import { inferenceAliases } from "./inference-routes";
import { liveAliases, modelListAliases } from "./live-routes";
import { metricsAliases } from "./metrics-routes";
import { modelAliases } from "./model-routes";
import { nodeAliases } from "./node-routes";
import { responsesAliases } from "./responses-routes";
import { usageAliases } from "./usage-routes";
import type { Handler } from "./gateway";

/** Every route answers errors in OpenAI's shape. */
function onError(_req: IncomingMessage, res: ServerResponse, err: Error) {
  sendError(res, err);
}

/** moleculer-web's `onBeforeCall` of `/api`: with the api service as `this`, whose gateway it gets. */
function auditHook(
  this: { gateway: Gateway },
  _ctx: unknown,
  _route: unknown,
  req: Parameters<Handler>[1],
  res: ServerResponse,
  alias: { method: string; fullPath: string },
) {
  auditWhenAnswered(this.gateway, req, res, alias);
}

/** The gateway's settings that come from the environment (read when the service is created): port, CORS, routes. */
export function gatewaySettings(): { router: RouterConfig; port: number; ip: string; [key: string]: unknown } {
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
    routes: MOUNTS.map((m) => ({
      path: m.path,
      // explicit aliases only, and the gate (mixins/auth-gate.mixin.ts) checks the route table
      logging: false,
      autoAliases: false,
      mappingPolicy: "restrict" as const,
      authentication: "authenticate",
      ...(m.json ? json : { bodyParsers: false }),
      onError,
      // admin actions go to the audit log once answered (services/api/audit-trail.ts)
      ...(m.path === "/api" ? { onBeforeCall: auditHook } : {}),
      aliases: moleculerAliases(m.aliases),
    })),
  };
}

/** moleculer-web's mounts: a path prefix, whether its routes take a JSON body, and its handlers (or an action). */
export const MOUNTS: Array<{ path: string; json: boolean; aliases: Record<string, Handler | string> }> = [
  { path: "/v1", json: true, aliases: { ...inferenceAliases["/v1"], ...responsesAliases, ...modelListAliases } },
  {
    path: "/api",
    json: true,
    aliases: {
      ...inferenceAliases["/api"],
      ...liveAliases,
      ...nodeAliases,
      ...modelAliases,
      ...aliasAliases,
      ...historyAliases,
      ...usageAliases,
      ...accountAliases,
      ...auditAliases,
    },
  },
  { path: "/", json: false, aliases: { "GET /health": "api.health", ...rootAliases, ...metricsAliases } },
  { path: "/dashboard", json: false, aliases: dashboardAliases },
];

/** "METHOD /full/path" of every alias, as the route table spells it. */
export function fullKey(mount: string, alias: string): string {
  const [method, sub] = alias.split(" ");
  return `${method} ${routePath(`${mount}/${sub}`)}`;
}

/** Every route the api serves and its handler (an action name for `GET /health`). */
export const ROUTE_HANDLERS: Map<string, Handler | string> = new Map(
  MOUNTS.flatMap((m) => Object.entries(m.aliases).map(([alias, h]) => [fullKey(m.path, alias), h] as const)),
);

/** A mount's aliases as moleculer-web calls them: with the api service as `this`, whose gateway they get. */
export function moleculerAliases(aliases: Record<string, Handler | string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(aliases).map(([alias, h]) => [
      alias,
      typeof h === "string"
        ? h
        : function (this: { gateway: Gateway }, req: Parameters<Handler>[1], res: Parameters<Handler>[2]) {
            h(this.gateway, req, res);
          },
    ]),
  );
}

/** The full paths the fast lane serves: POST routes that take an API key. */
export function fastRoutes(): Map<string, Handler> {
  const routes = new Map<string, Handler>();
  for (const [key, h] of ROUTE_HANDLERS) {
    const [method, path] = key.split(" ");
    if (typeof h !== "string" && method === "POST" && accessFor(method, path) === "apiKey") routes.set(path, h);
  }
  return routes;
}
