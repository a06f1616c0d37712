/**
 * Aliases of the account routes (`/api/auth/*`, `/api/users`, `/api/api-keys`),
 * mounted on the api's `/api` route. Thin: pick the allowed fields, call the
 * auth or apikeys service, answer JSON. What each needs is in lib/auth/routes.ts.
 */
import { badRequest } from "../../lib/openai/errors";
import { answer, claims, pick } from "./route-helpers";
import type { Handler } from "./gateway";

export const accountAliases: Record<string, Handler> = {
  "POST /auth/login"(gw, req, res) {
    answer(gw, res, async () => {
      const { username, password } = pick(req, ["username", "password"]);
      return req.$ctx.call("auth.login", { username, password, ip: gw.clientIp(req) });
    });
  },
  "POST /auth/logout"(gw, req, res) {
    answer(gw, res, async () => {
      const c = claims(req);
      return req.$ctx.call("auth.logout", { jti: c.jti, exp: c.exp });
    });
  },
  "GET /auth/me"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("auth.me", { id: claims(req).sub }));
  },
  "POST /auth/password"(gw, req, res) {
    answer(gw, res, async () =>
      req.$ctx.call("auth.changePassword", { ...pick(req, ["current_password", "new_password"]), id: claims(req).sub }),
    );
  },

  "GET /users"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("auth.listUsers"));
  },
  "POST /users"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("auth.createUser", pick(req, ["username", "password", "role"])), 201);
  },
  "PUT /users/:id"(gw, req, res) {
    answer(gw, res, async () =>
      req.$ctx.call("auth.updateUser", { ...pick(req, ["username", "password", "role"]), id: req.$params?.id }),
    );
  },
  "DELETE /users/:id"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("auth.removeUser", { id: req.$params?.id }));
  },

  "GET /api-keys"(gw, req, res) {
    answer(gw, res, async () => {
      const c = claims(req);
      // admins see every key; viewers only their own
      return req.$ctx.call("apikeys.list", c.role === "admin" ? {} : { owner: c.sub });
    });
  },
  "POST /api-keys"(gw, req, res) {
    answer(
      gw,
      res,
      async () => {
        const params = pick(req, ["name", "owner", "expires_at", "allowed_models", "rate_limit_rpm", "priority"]);
        if (params.owner !== undefined) {
          if (typeof params.owner !== "string") throw badRequest("owner must be a user id.", "owner", "invalid_value");
          await req.$ctx.call("auth.me", { id: params.owner });
        }
        return req.$ctx.call("apikeys.create", { ...params, owner: params.owner ?? claims(req).sub });
      },
      201,
    );
  },
  "PUT /api-keys/:id"(gw, req, res) {
    answer(gw, res, async () =>
      req.$ctx.call("apikeys.update", {
        ...pick(req, ["name", "expires_at", "allowed_models", "rate_limit_rpm", "priority"]),
        id: req.$params?.id,
      }),
    );
  },
  "DELETE /api-keys/:id"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("apikeys.remove", { id: req.$params?.id }));
  },
};
