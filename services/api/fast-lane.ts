/**
 * The fast lane: the inference routes (`POST /v1/chat/completions` and the
 * others that take an API key) served straight from the HTTP server, in
 * front of moleculer-web. They run the same gate (mixins/auth-gate.mixin.ts),
 * the same JSON body parser (lib/http/body.ts) and the
 * same alias handlers as through moleculer-web, without its per-request
 * machinery: the `rest` action call with its middlewares, route matching and
 * the context it builds for every request (measured in bench/RESULTS.md,
 * "operations and speed"). Everything else goes on to moleculer-web, as does
 * a cross-origin request when CORS is configured (moleculer-web answers its
 * headers).
 */
import type { RequestListener, ServerResponse } from "node:http";
import { jsonBody, readJsonBody } from "../../lib/http/body";
import { sendError } from "../../lib/http/respond";
import { admit } from "../../mixins/auth-gate.mixin";
import type { Gateway } from "./gateway";
import type { Handler } from "./gateway";
import type { Req } from "./types";

export interface FastLaneOptions {
  /** body-parser's `limit` (moleculer-web's routes use the same). */
  maxBodySize: string;
  /** CORS origins: with any, a request that carries an Origin goes to moleculer-web. */
  cors: boolean;
}

/** A request listener that serves `routes` itself and hands the rest to `next` (moleculer-web). */
export function fastLane(
  gw: Gateway,
  routes: Map<string, Handler>,
  next: RequestListener,
  opts: FastLaneOptions,
): RequestListener {
  const parseJson = jsonBody({ limit: opts.maxBodySize });

  const serve = async (handler: Handler, path: string, req: Req, res: ServerResponse) => {
    const ctx = gw.broker.ContextFactory.create(gw.broker);
    try {
      await admit(gw, ctx, "POST", path, req, res);
      await readJsonBody(parseJson, req, res);
    } catch (err) {
      sendError(res, err);
      return;
    }
    req.$ctx = ctx;
    handler(gw, req, res);
  };

  return (req, res) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const handler = req.method === "POST" ? routes.get(path) : undefined;
    if (!handler || (opts.cors && req.headers.origin !== undefined)) return next(req, res);
    serve(handler, path, req as Req, res).catch((err: unknown) => sendError(res, err));
  };
}
