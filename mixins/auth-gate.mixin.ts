/**
 * The api's gate: moleculer-web calls `authenticate` for every matched route;
 * it looks the route up in lib/auth/routes.ts and demands what the table says.
 * A route missing from the table is refused. What it learns is put on the
 * request (`req.$auth`), not in ctx.meta, so it never travels to other nodes.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, Service, ServiceSchema } from "moleculer";
import { accessFor, routePath } from "../lib/auth/routes";
import { scopeAllows } from "../lib/auth/scopes";
import type { TokenClaims } from "../lib/auth/jwt";
import { looksLikeApiKey } from "../lib/auth/keys";
import { looksLikeNodeToken } from "../lib/auth/node-tokens";
import { apiKeyFrom, bearer } from "../lib/http/credentials";
import { apiError } from "../lib/openai/errors";
import { authConfig, metricsConfig } from "../lib/config";
import type { KeyIdentity } from "../services/apikeys.service";
import { KeyCache } from "../lib/auth/key-cache";
import { routerCore, type KeyRoute } from "../lib/core/router-core";
import { Meter } from "../lib/quota/meter";
import type { Grant } from "../lib/quota/quota";

export type RequestAuth =
  | { kind: "public" }
  | { kind: "apiKey"; key: KeyIdentity | null }
  | { kind: "user"; claims: TokenClaims }
  /** The registry checks the token against the agent the body names. */
  | { kind: "node"; token: string };

export type AuthedRequest = IncomingMessage & {
  $auth?: RequestAuth;
  /** An admitted request's tokens against its key's limits (lib/quota/meter.ts). */
  $meter?: Meter;
};

interface Alias {
  method: string;
  fullPath: string;
}

type This = Service & { gate: GateConfig };

/** What the gate needs of the configuration, read when the api is created. */
export interface GateConfig {
  authDisabled: boolean;
  metricsToken: string | null;
}

export function gateConfig(): GateConfig {
  return { authDisabled: authConfig().authDisabled, metricsToken: metricsConfig().token };
}

/** Keys confirmed by a key service in another process (a gateway's); see lib/auth/key-cache.ts. */
const remoteKeys = new KeyCache<KeyIdentity>(10_000);

/** Forgets the keys a gateway keeps (the key service calls this through `api.forgetKeys` on a change). */
export function forgetCachedKeys(): void {
  remoteKeys.clear();
}

/**
 * A key checked by the key service of this process, or else by the cache or
 * the remote one; `hit` admits a request against its limits (an inference
 * request: every POST that takes a key), which no cache can do.
 */
async function verifyKey(ctx: Context, key: string, route: KeyRoute, hit: boolean): Promise<KeyIdentity> {
  const local = routerCore(ctx.broker).keys;
  if (local) return local.verifyKey(key, hit, route);
  const cached = remoteKeys.get(key);
  if (cached) {
    if (!scopeAllows(cached.scopes, route.method, route.path, route.access)) {
      throw apiError(403, `This API key may not be used for ${route.method} ${route.path}.`, "scope_not_allowed");
    }
    return cached;
  }
  const generation = remoteKeys.generation;
  const identity = await ctx.call<KeyIdentity, { key: string; hit: boolean; route: KeyRoute }>("apikeys.verify", {
    key,
    hit,
    route,
  });
  if (!identity.grant) remoteKeys.set(key, identity, generation);
  return identity;
}

/**
 * A request admitted against its key's limits: its answer carries where the
 * key stands (`x-ratelimit-*`); an inference request (a POST) gets a meter
 * for the tokens it uses, which the request's trace takes over (ended when
 * the answer is, or when the connection closes before anything took it:
 * its slot is never held for nothing); any other request ends at once.
 */
function admitted(ctx: Context, grant: Grant, inference: boolean, res?: ServerResponse): Meter | undefined {
  if (res && !res.headersSent) for (const [name, value] of Object.entries(grant.headers)) res.setHeader(name, value);
  const local = routerCore(ctx.broker).keys;
  const report = local
    ? (tokens: number, ended: boolean) => local.useQuota(grant, tokens, ended)
    : (tokens: number, ended: boolean) =>
        ctx.call<void, object>("apikeys.quotaUse", { grant, tokens, ended }).then(() => undefined);
  const holdsSlot = grant.subjects.some((s) => s.limits.maxConcurrent !== null);
  const meter = new Meter(
    report,
    (err) => ctx.broker.logger.warn(`tokens of a request not counted: ${err.message}`),
    holdsSlot,
  );
  if (!inference || !res) {
    meter.end(0);
    return undefined;
  }
  res.once("close", () => {
    if (!meter.claimed) meter.end(null);
  });
  return meter;
}

/** The login a key with a management scope stands for: its owner, as a viewer. */
function keyClaims(key: KeyIdentity): TokenClaims {
  return { sub: key.owner, username: `key:${key.name}`, role: "viewer", jti: `key:${key.id}`, exp: 0, iat: 0 };
}

function constantTimeEqual(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Checks a request against the route table (`path` in its form there) and
 * puts what it learns on `req.$auth`; throws an OpenAI-shaped 401/403/429.
 * moleculer-web's routes and the api's fast lane both come through here.
 */
export async function admit(
  service: Pick<Service, "logger"> & { gate: GateConfig },
  ctx: Context,
  method: string,
  path: string,
  req: AuthedRequest,
  res?: ServerResponse,
) {
  const access = accessFor(method, path);
  if (!access) {
    service.logger.error(`route ${method} ${path} is not in the route table; refused`);
    throw apiError(403, "This route is not open.", "route_not_allowed");
  }
  if (access === "public") {
    req.$auth = { kind: "public" };
    return;
  }
  const { authDisabled, metricsToken } = service.gate;
  if (access === "apiKey") {
    if (authDisabled) {
      req.$auth = { kind: "apiKey", key: null };
      return;
    }
    const key = apiKeyFrom(req.headers);
    if (!key) {
      throw apiError(
        401,
        "An API key is required: send 'Authorization: Bearer sk-…' or 'X-API-Key'.",
        "missing_api_key",
      );
    }
    if (!looksLikeApiKey(key)) throw apiError(401, "The API key is not valid.", "invalid_api_key");
    const identity = await verifyKey(ctx, key, { method, path, access }, true);
    req.$auth = { kind: "apiKey", key: identity };
    if (identity.grant) req.$meter = admitted(ctx, identity.grant, method === "POST", res);
    return;
  }
  const token = bearer(req.headers);
  // a key with the `read` scope (or this route's) reads management data as its owner would, as a viewer
  if (access === "user" && method === "GET" && token && looksLikeApiKey(token)) {
    const identity = await verifyKey(ctx, token, { method, path, access }, false).catch((err: { type?: string }) => {
      // a key without that scope is no login, as ever
      throw err?.type === "scope_not_allowed"
        ? apiError(401, "Log in first: this API key may not read management data.", "invalid_token")
        : err;
    });
    req.$auth = { kind: "user", claims: keyClaims(identity) };
    return;
  }
  if (access === "node") {
    if (!token || !looksLikeNodeToken(token)) {
      throw apiError(401, "Send the node token: 'Authorization: Bearer nt-…'.", "invalid_node_token");
    }
    req.$auth = { kind: "node", token };
    return;
  }
  if (access === "metrics" && metricsToken && token && constantTimeEqual(token, metricsToken)) {
    req.$auth = { kind: "public" };
    return;
  }
  if (!token)
    throw apiError(
      401,
      "Log in first: send 'Authorization: Bearer <token>' from POST /api/auth/login.",
      "missing_token",
    );
  const claims = await ctx.call<TokenClaims, { token: string }>("auth.verifyToken", { token });
  // known before the role is checked: the audit log names who was refused (services/api/audit-trail.ts)
  req.$auth = { kind: "user", claims };
  if (access === "admin" && claims.role !== "admin") {
    throw apiError(403, "This needs an admin.", "admin_required");
  }
}

export const AuthGateMixin: Partial<ServiceSchema> = {
  methods: {
    async authenticate(
      this: This,
      ctx: Context,
      _route: unknown,
      req: AuthedRequest,
      res: ServerResponse,
      alias: Alias,
    ) {
      return admit(this, ctx, alias.method, routePath(alias.fullPath), req, res).then(() => null);
    },
  },

  created(this: Service & { gate?: GateConfig }) {
    this.gate = gateConfig();
    if (this.gate.authDisabled) {
      this.logger.warn(
        "!!! LLM_ROUTER_AUTH_DISABLED=true: /v1, /api/chat and /api/generate accept requests WITHOUT an API key. Only for trusted networks. !!!",
      );
    }
  },
};
