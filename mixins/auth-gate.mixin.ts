/**
 * The api's gate: moleculer-web calls `authenticate` for every matched route;
 * it looks the route up in lib/auth/routes.ts and demands what the table says.
 * A route missing from the table is refused. What it learns is put on the
 * request (`req.$auth`), not in ctx.meta, so it never travels to other nodes.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Context, Service, ServiceSchema } from "moleculer";
import { accessFor, routePath } from "../lib/auth/routes";
import type { TokenClaims } from "../lib/auth/jwt";
import { looksLikeApiKey } from "../lib/auth/keys";
import { looksLikeNodeToken } from "../lib/auth/node-tokens";
import { apiKeyFrom, bearer } from "../lib/http/credentials";
import { apiError } from "../lib/openai/errors";
import { authConfig, metricsConfig } from "../lib/config";
import type { KeyIdentity } from "../services/apikeys.service";
import { KeyCache } from "../lib/auth/key-cache";
import { routerCore } from "../lib/core/router-core";

export type RequestAuth =
  | { kind: "public" }
  | { kind: "apiKey"; key: KeyIdentity | null }
  | { kind: "user"; claims: TokenClaims }
  /** The registry checks the token against the agent the body names. */
  | { kind: "node"; token: string };

export type AuthedRequest = IncomingMessage & { $auth?: RequestAuth };

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

/** A key checked by the key service of this process, or else by the cache or the remote one. */
async function verifyKey(ctx: Context, key: string): Promise<KeyIdentity> {
  // apikeys counts the key's requests (its RPM limit holds across router replicas); called directly when local
  const local = routerCore(ctx.broker).keys;
  if (local) return local.verifyKey(key, true);
  const cached = remoteKeys.get(key);
  if (cached) return cached;
  const generation = remoteKeys.generation;
  const identity = await ctx.call<KeyIdentity, { key: string; hit: boolean }>("apikeys.verify", { key, hit: true });
  remoteKeys.set(key, identity, generation);
  return identity;
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
    req.$auth = { kind: "apiKey", key: await verifyKey(ctx, key) };
    return;
  }
  const token = bearer(req.headers);
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
    async authenticate(this: This, ctx: Context, _route: unknown, req: AuthedRequest, _res: unknown, alias: Alias) {
      return admit(this, ctx, alias.method, routePath(alias.fullPath), req).then(() => null);
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
