/**
 * What the api does with a request's method before any handler runs, from
 * the route table (lib/auth/routes.ts): a method the table has for the path
 * goes on; OPTIONS answers `Allow` (or goes to the CORS preflight when CORS is
 * configured); HEAD runs only a public GET route, without its body; anything
 * else is 405 with `Allow`. No handler ever runs for a method the table does
 * not list for its path (an OPTIONS never opens an event stream or exports
 * history).
 */
import type { RequestListener } from "node:http";
import { accessFor, methodsFor, routePath } from "../auth/routes";
import { apiError } from "../openai/errors";
import { sendError } from "./respond";

export type MethodDecision =
  /** Serve it as it is. */
  | { action: "pass" }
  /** Serve it as a GET whose body is not sent (Node drops a HEAD response's body). */
  | { action: "head-as-get" }
  /** Answer 204 with `Allow`. */
  | { action: "options"; allow: string }
  /** Answer 405 with `Allow`. */
  | { action: "not-allowed"; allow: string }
  /** No such route. */
  | { action: "not-found" };

const TABLE_METHODS = new Set(["GET", "POST", "PUT", "DELETE"]);

/** `Allow` for a path: its methods, HEAD where a public GET is, and OPTIONS. */
function allowHeader(methods: Map<string, string>): string {
  const list = [...methods.keys()];
  if (methods.get("GET") === "public") list.push("HEAD");
  list.push("OPTIONS");
  return list.join(", ");
}

export function methodDecision(
  method: string | undefined,
  rawPath: string,
  opts: { cors: boolean; preflight: boolean },
): MethodDecision {
  const m = (method ?? "").toUpperCase();
  // the common case, without matching patterns: a route of the table exactly as it is spelled there
  if (TABLE_METHODS.has(m) && accessFor(m, rawPath) !== undefined) return { action: "pass" };
  const methods = methodsFor(routePath(rawPath));
  if (TABLE_METHODS.has(m) && methods.has(m as "GET")) return { action: "pass" };
  if (methods.size === 0) return TABLE_METHODS.has(m) ? { action: "pass" } : { action: "not-found" };
  const allow = allowHeader(methods);
  if (m === "OPTIONS") return opts.cors && opts.preflight ? { action: "pass" } : { action: "options", allow };
  if (m === "HEAD" && methods.get("GET") === "public") return { action: "head-as-get" };
  return { action: "not-allowed", allow };
}

/** A request listener that applies methodDecision in front of `next`. */
export function methodGate(next: RequestListener, opts: { cors: boolean }): RequestListener {
  return (req, res) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const preflight = req.headers.origin !== undefined && req.headers["access-control-request-method"] !== undefined;
    const d = methodDecision(req.method, q < 0 ? url : url.slice(0, q), { cors: opts.cors, preflight });
    switch (d.action) {
      case "pass":
        return next(req, res);
      case "head-as-get":
        req.method = "GET";
        return next(req, res);
      case "options":
        res.writeHead(204, { Allow: d.allow, "Content-Length": "0" }).end();
        return;
      case "not-allowed":
        res.setHeader("Allow", d.allow);
        sendError(res, apiError(405, `${req.method} is not allowed here; allowed: ${d.allow}.`, "method_not_allowed"));
        return;
      case "not-found":
        sendError(res, apiError(404, "Not found.", "not_found"));
    }
  };
}
