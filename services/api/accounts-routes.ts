/**
 * Aliases of the account routes (`/api/auth/*`, `/api/users`, `/api/api-keys`),
 * mounted on the api's `/api` route. Thin: pick the allowed fields, call the
 * auth or apikeys service, answer JSON. What each needs is in lib/auth/routes.ts.
 */
import { apiError, badRequest } from "../../lib/openai/errors";
import { LIMIT_FIELDS, parseLimits } from "../../lib/quota/limits";
import { DEFAULT_PRIORITY, parsePriority, priorityValue } from "../../lib/routing/priority";

const LIMITS = Object.keys(LIMIT_FIELDS);
const NO_LIMITS_VIEW = Object.fromEntries(LIMITS.map((f) => [f, null]));
const nullLimits = () => ({ ...NO_LIMITS_VIEW });
const KEY_FIELDS = ["name", "owner", "expires_at", "allowed_models", "priority", "scopes", ...LIMITS];
import { answer, claims, pick, pickOnly } from "./route-helpers";
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
    answer(gw, res, async () => {
      const [users, limits] = await Promise.all([
        req.$ctx.call<Array<{ id: string }>>("auth.listUsers"),
        req.$ctx.call<Record<string, Record<string, number | null>>>("apikeys.userLimits"),
      ]);
      return users.map((u) => ({ ...u, ...(limits[u.id] ?? NO_LIMITS_VIEW) }));
    });
  },
  "POST /users"(gw, req, res) {
    answer(
      gw,
      res,
      async () => {
        const account = pickOnly(req, ["username", "password", "role", ...LIMITS]);
        for (const f of LIMITS) delete account[f];
        const limits = pick(req, LIMITS);
        // checked first: a bad limit makes no user
        if (Object.keys(limits).length) parseLimits(limits);
        const user = await req.$ctx.call<{ id: string }, object>("auth.createUser", account);
        const set = Object.keys(limits).length
          ? await req.$ctx.call<Record<string, unknown>, object>("apikeys.setUserLimits", { ...limits, user: user.id })
          : NO_LIMITS_VIEW;
        const { user: _user, ...view } = set;
        return { ...user, ...view };
      },
      201,
    );
  },
  "PUT /users/:id"(gw, req, res) {
    answer(gw, res, async () => {
      const id = req.$params?.id;
      const account = pickOnly(req, ["username", "password", "role", ...LIMITS]);
      for (const f of LIMITS) delete account[f];
      const limits = pick(req, LIMITS);
      // checked first: a bad limit changes nothing
      if (Object.keys(limits).length) parseLimits(limits);
      const user = Object.keys(account).length
        ? await req.$ctx.call<Record<string, unknown>, object>("auth.updateUser", { ...account, id })
        : await req.$ctx.call<Record<string, unknown>, object>("auth.me", { id });
      const set = Object.keys(limits).length
        ? await req.$ctx.call<Record<string, unknown>, object>("apikeys.setUserLimits", { ...limits, user: id })
        : ((await req.$ctx.call<Record<string, Record<string, unknown>>>("apikeys.userLimits"))[String(id)] ??
          NO_LIMITS_VIEW);
      const { user: _user, ...view } = set;
      return { ...user, ...view };
    });
  },
  "DELETE /users/:id"(gw, req, res) {
    answer(gw, res, async () => {
      const done = await req.$ctx.call("auth.removeUser", { id: req.$params?.id });
      await req.$ctx.call("apikeys.setUserLimits", { ...nullLimits(), user: req.$params?.id });
      return done;
    });
  },

  "GET /api-keys"(gw, req, res) {
    answer(gw, res, async () => {
      const c = claims(req);
      // admins see every key; viewers only their own
      return req.$ctx.call("apikeys.list", c.role === "admin" ? {} : { owner: c.sub });
    });
  },
  // an admin makes keys for anyone; any login makes keys for their own use (bounded by their own limits)
  "POST /api-keys"(gw, req, res) {
    answer(
      gw,
      res,
      async () => {
        const c = claims(req);
        const params = pickOnly(req, KEY_FIELDS);
        if (params.owner !== undefined) {
          if (typeof params.owner !== "string") throw badRequest("owner must be a user id.", "owner", "invalid_value");
          if (c.role !== "admin" && params.owner !== c.sub) {
            throw apiError(403, "Only an admin makes keys for another user.", "admin_required", { param: "owner" });
          }
          await req.$ctx.call("auth.me", { id: params.owner });
        }
        if (
          c.role !== "admin" &&
          params.priority !== undefined &&
          priorityValue(parsePriority(params.priority)) > DEFAULT_PRIORITY
        ) {
          throw apiError(403, "Only an admin gives a key a priority above normal.", "admin_required", {
            param: "priority",
          });
        }
        return req.$ctx.call("apikeys.create", { ...params, owner: params.owner ?? c.sub });
      },
      201,
    );
  },
  "PUT /api-keys/:id"(gw, req, res) {
    answer(gw, res, async () =>
      req.$ctx.call("apikeys.update", {
        ...pickOnly(
          req,
          KEY_FIELDS.filter((f) => f !== "owner"),
        ),
        id: req.$params?.id,
      }),
    );
  },
  // an admin revokes any key; a login its own
  "DELETE /api-keys/:id"(gw, req, res) {
    answer(gw, res, async () => {
      const c = claims(req);
      if (c.role !== "admin") {
        const own = await req.$ctx.call<Array<{ id: string }>, object>("apikeys.list", { owner: c.sub });
        if (!own.some((k) => k.id === req.$params?.id)) {
          throw apiError(404, `No API key with id '${req.$params?.id}'.`, "api_key_not_found", { param: "id" });
        }
      }
      return req.$ctx.call("apikeys.remove", { id: req.$params?.id });
    });
  },
};
