/**
 * What an API key may be used for. A key without scopes serves inference
 * (every route of the table that takes an API key), as keys always did.
 * Scopes, any of:
 *   inference          the inference routes (`/v1/*`, `/api/chat`, `/api/generate`)
 *   read               read-only management: the GET routes a login of any role may use,
 *                      answered as its owner would see them as a viewer (their own keys and usage)
 *   "POST /v1/embeddings", "/v1/models"
 *                      named routes of the table (a method and path, or a path for every method),
 *                      among those a key may be given
 * Admin routes and anything that changes management state never take a key.
 */
import { badRequest } from "../openai/errors";
import { ROUTES, type Access } from "./routes";

export const SCOPE_NAMES = ["inference", "read"] as const;
const MAX_SCOPES = 100;

/** Whether a key may ever be given this route (an inference route, or a read-only management one). */
function keyRoute(method: string, access: Access): boolean {
  return access === "apiKey" || (access === "user" && method === "GET");
}

const NAMED = new Set<string>();
for (const r of ROUTES) {
  if (!keyRoute(r.method, r.access)) continue;
  NAMED.add(`${r.method} ${r.path}`);
  NAMED.add(r.path);
}

/** Scopes as a client sends them, checked: null (inference) or a list of scope names and routes. */
export function parseScopes(raw: unknown): string[] | null {
  if (raw === null) return null;
  const bad = (why: string) =>
    badRequest(
      `scopes ${why}: each is 'inference', 'read', or a route of the API a key may use ('POST /v1/embeddings', '/v1/models').`,
      "scopes",
      "invalid_value",
    );
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_SCOPES)
    throw bad(`must be a list of 1 to ${MAX_SCOPES} entries`);
  for (const s of raw) {
    if (typeof s !== "string") throw bad("must be strings");
    if (!(SCOPE_NAMES as readonly string[]).includes(s) && !NAMED.has(s)) throw bad(`has '${s.slice(0, 100)}'`);
  }
  return [...new Set(raw as string[])];
}

/** Whether a key with `scopes` may call `method path` (the route's path as the table spells it). */
export function scopeAllows(
  scopes: string[] | null | undefined,
  method: string,
  path: string,
  access: Access,
): boolean {
  if (!keyRoute(method, access)) return false;
  const list = scopes ?? ["inference"];
  if (list.includes(`${method} ${path}`) || list.includes(path)) return true;
  return access === "apiKey" ? list.includes("inference") : list.includes("read");
}
