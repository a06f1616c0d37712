/** Helpers shared by the api's management aliases. */
import type { ServerResponse } from "node:http";
import type { TokenClaims } from "../../lib/auth/jwt";
import { sendJson, sendError } from "../../lib/http/respond";
import { badRequest } from "../../lib/openai/errors";
import type { Gateway } from "./gateway";
import type { Req } from "./types";

export type { Req };

/** The JSON body as an object with only `allowed` keys. */
export function pick(req: Req, allowed: string[]): Record<string, unknown> {
  const body = req.body ?? {};
  if (typeof body !== "object" || Array.isArray(body)) throw badRequest("The request body must be a JSON object.");
  const src = body as Record<string, unknown>;
  return Object.fromEntries(allowed.filter((k) => src[k] !== undefined).map((k) => [k, src[k]]));
}

/**
 * The JSON body as an object with only `allowed` keys, refusing any other
 * (400 naming it): a field the route does not take is never silently dropped.
 */
export function pickOnly(req: Req, allowed: string[]): Record<string, unknown> {
  const body = (req.body ?? {}) as Record<string, unknown>;
  if (typeof body === "object" && !Array.isArray(body)) {
    const unknown = Object.keys(body).find((k) => !allowed.includes(k));
    if (unknown !== undefined) {
      throw badRequest(
        `Unknown field '${unknown.slice(0, 100)}': this route takes ${allowed.join(", ")}.`,
        unknown.slice(0, 100),
        "unknown_parameter",
      );
    }
  }
  return pick(req, allowed);
}

export function claims(req: Req): TokenClaims {
  if (req.$auth?.kind !== "user") throw new Error("account route reached without a login");
  return req.$auth.claims;
}

/** The request's query-string values, as moleculer-web parsed them. */
export const queryOf = (req: Req): Record<string, unknown> =>
  (req as Req & { query?: Record<string, unknown> }).query ?? {};

/** Runs `work` and answers its result as JSON with `status`, or the error in OpenAI's shape. */
export function answer(gw: Gateway, res: ServerResponse, work: () => Promise<unknown>, status = 200): void {
  work().then(
    (body) => sendJson(res, status, body),
    (err: unknown) => {
      if (sendError(res, err) >= 500) gw.logger.warn(`route failed: ${(err as Error)?.message}`);
    },
  );
}
