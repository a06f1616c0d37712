/**
 * The one route table: for each HTTP route, what it requires. The api checks
 * every request against it (a route missing here is refused), and a test
 * walks it whole.
 *   public  no credentials
 *   apiKey  an API key (`Authorization: Bearer sk-…` or `X-API-Key`), unless LLM_ROUTER_AUTH_DISABLED
 *   user    a login token (JWT) of any role
 *   admin   a login token of an admin
 *   node    a node token (`Authorization: Bearer nt-…`), checked against the agent it names
 *   metrics LLM_ROUTER_METRICS_TOKEN as a bearer token, or a login token
 */
export type Access = "public" | "apiKey" | "user" | "admin" | "node" | "metrics";

export interface RouteRule {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  access: Access;
}

export const ROUTES: RouteRule[] = [
  { method: "GET", path: "/health", access: "public" },
  // the dashboard's files (its data comes from the routes below, with a login)
  { method: "GET", path: "/", access: "public" },
  { method: "GET", path: "/dashboard", access: "public" },
  { method: "GET", path: "/dashboard/*path", access: "public" },
  // OpenAI-compatible inference and the seed's legacy endpoints
  { method: "POST", path: "/v1/chat/completions", access: "apiKey" },
  { method: "POST", path: "/v1/completions", access: "apiKey" },
  { method: "POST", path: "/v1/embeddings", access: "apiKey" },
  { method: "POST", path: "/v1/rerank", access: "apiKey" },
  { method: "POST", path: "/v1/messages", access: "apiKey" },
  { method: "POST", path: "/v1/responses", access: "apiKey" },
  { method: "GET", path: "/v1/responses/:id", access: "apiKey" },
  { method: "DELETE", path: "/v1/responses/:id", access: "apiKey" },
  { method: "GET", path: "/v1/responses/:id/input_items", access: "apiKey" },
  { method: "GET", path: "/v1/models", access: "apiKey" },
  { method: "GET", path: "/v1/models/*id", access: "apiKey" },
  { method: "POST", path: "/api/chat", access: "apiKey" },
  { method: "POST", path: "/api/generate", access: "apiKey" },
  // accounts
  { method: "POST", path: "/api/auth/login", access: "public" },
  { method: "POST", path: "/api/auth/logout", access: "user" },
  { method: "GET", path: "/api/auth/me", access: "user" },
  { method: "POST", path: "/api/auth/password", access: "user" },
  { method: "GET", path: "/api/users", access: "admin" },
  { method: "POST", path: "/api/users", access: "admin" },
  { method: "PUT", path: "/api/users/:id", access: "admin" },
  { method: "DELETE", path: "/api/users/:id", access: "admin" },
  { method: "GET", path: "/api/api-keys", access: "user" },
  // any login makes and revokes keys for its own use; an admin for anyone (services/api/accounts-routes.ts)
  { method: "POST", path: "/api/api-keys", access: "user" },
  { method: "PUT", path: "/api/api-keys/:id", access: "admin" },
  { method: "DELETE", path: "/api/api-keys/:id", access: "user" },
  // cluster
  { method: "GET", path: "/api/nodes", access: "user" },
  { method: "GET", path: "/api/agents", access: "user" },
  { method: "GET", path: "/api/nodes/:id", access: "user" },
  { method: "GET", path: "/api/nodes/:id/metrics", access: "user" },
  { method: "POST", path: "/api/nodes", access: "admin" },
  { method: "POST", path: "/api/agents", access: "admin" },
  { method: "POST", path: "/api/health", access: "node" },
  { method: "PUT", path: "/api/nodes/:id/settings", access: "admin" },
  { method: "POST", path: "/api/nodes/:id/drain", access: "admin" },
  { method: "POST", path: "/api/nodes/:id/undrain", access: "admin" },
  { method: "POST", path: "/api/nodes/:id/disconnect", access: "admin" },
  { method: "DELETE", path: "/api/nodes/:id", access: "admin" },
  // models and tasks
  { method: "GET", path: "/api/models", access: "user" },
  { method: "POST", path: "/api/models/register", access: "admin" },
  { method: "GET", path: "/api/models/available", access: "user" },
  { method: "POST", path: "/api/models/:id/download", access: "admin" },
  { method: "POST", path: "/api/models/:id/load", access: "admin" },
  { method: "POST", path: "/api/models/:id/unload", access: "admin" },
  { method: "DELETE", path: "/api/models/:id", access: "admin" },
  { method: "GET", path: "/api/tasks", access: "user" },
  { method: "GET", path: "/api/tasks/:id", access: "user" },
  { method: "POST", path: "/api/tasks/:id/cancel", access: "admin" },
  { method: "POST", path: "/api/tasks/:id/restart", access: "admin" },
  { method: "DELETE", path: "/api/nodes/:id/models/:model", access: "admin" },
  // model aliases and fallback chains
  { method: "GET", path: "/api/aliases", access: "user" },
  { method: "POST", path: "/api/aliases", access: "admin" },
  { method: "DELETE", path: "/api/aliases/:alias", access: "admin" },
  { method: "PUT", path: "/api/fallbacks/:model", access: "admin" },
  { method: "DELETE", path: "/api/fallbacks/:model", access: "admin" },
  // the audit log of admin actions
  { method: "GET", path: "/api/audit", access: "admin" },
  { method: "GET", path: "/api/audit/verify", access: "admin" },
  // history and metrics
  { method: "GET", path: "/api/dashboard/request-responses", access: "user" },
  { method: "GET", path: "/api/dashboard/request-responses/export", access: "user" },
  { method: "GET", path: "/api/dashboard/request-responses/:id", access: "user" },
  { method: "GET", path: "/api/dashboard/stats", access: "user" },
  { method: "GET", path: "/api/dashboard/overview", access: "user" },
  { method: "GET", path: "/api/dashboard/events", access: "user" },
  // usage from the daily roll-ups (a viewer: their own keys')
  { method: "GET", path: "/api/usage", access: "user" },
  { method: "POST", path: "/api/playground/chat", access: "user" },
  { method: "POST", path: "/api/playground/responses", access: "user" },
  { method: "GET", path: "/api/playground/models", access: "user" },
  { method: "GET", path: "/metrics", access: "metrics" },
  { method: "GET", path: "/metrics/cloud", access: "metrics" },
];

/** A route's path as the table spells it: single slashes, no trailing slash (but "/"). */
export function routePath(fullPath: string): string {
  const p = fullPath.replace(/\/{2,}/g, "/");
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
}

const BY_KEY = new Map(ROUTES.map((r) => [`${r.method} ${r.path}`, r.access]));

/** What a route requires, or undefined when it is not in the table. */
export function accessFor(method: string, path: string): Access | undefined {
  return BY_KEY.get(`${method} ${path}`);
}

/** A route's path as a regular expression: `:name` is one segment, `*name` the rest. */
function pathPattern(path: string): RegExp {
  const body = path
    .split("/")
    .map((seg) =>
      seg.startsWith(":") ? "[^/]+" : seg.startsWith("*") ? ".+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("/");
  return new RegExp(`^${body}$`);
}

const PATTERNS = ROUTES.map((r) => ({ ...r, re: pathPattern(r.path) }));

/** The methods the table has for `path` (in its form there, see routePath), with each one's access. */
export function methodsFor(path: string): Map<RouteRule["method"], Access> {
  const out = new Map<RouteRule["method"], Access>();
  for (const r of PATTERNS) if (!out.has(r.method) && r.re.test(path)) out.set(r.method, r.access);
  return out;
}
