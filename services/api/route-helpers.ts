/** Helpers shared by the api's management aliases. */
import type { ServerResponse } from "node:http";
import type { Context, Service } from "moleculer";
import type { TokenClaims } from "../../lib/auth/jwt";
import { sendJson, sendError } from "../../lib/http/respond";
import { badRequest } from "../../lib/openai/errors";
import type { AuthedRequest } from "../../mixins/auth-gate.mixin";

export type Req = AuthedRequest & { $ctx: Context; body?: unknown; $params?: Record<string, string> };

/** The JSON body as an object with only `allowed` keys. */
export function pick(req: Req, allowed: string[]): Record<string, unknown> {
  const body = req.body ?? {};
  if (typeof body !== "object" || Array.isArray(body)) throw badRequest("The request body must be a JSON object.");
  const src = body as Record<string, unknown>;
  return Object.fromEntries(allowed.filter((k) => src[k] !== undefined).map((k) => [k, src[k]]));
}

export function claims(req: Req): TokenClaims {
  if (req.$auth?.kind !== "user") throw new Error("account route reached without a login");
  return req.$auth.claims;
}

/** The client's address as the api resolves it for every route (LLM_ROUTER_TRUSTED_PROXIES honoured). */
export function clientIp(api: Service, req: Req): string {
  return (api as Service & { clientIp(req: Req): string }).clientIp(req);
}

/** Runs `work` and answers its result as JSON with `status`, or the error in OpenAI's shape. */
export function answer(this: Service, res: ServerResponse, work: () => Promise<unknown>, status = 200): void {
  work().then(
    (body) => sendJson(res, status, body),
    (err: unknown) => {
      if (sendError(res, err) >= 500) this.logger.warn(`account route failed: ${(err as Error)?.message}`);
    },
  );
}

export type Alias = (this: Service, req: Req, res: ServerResponse) => void;
