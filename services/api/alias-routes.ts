/**
 * Model aliases and fallback chains (services/aliases.service.ts), mounted on
 * `/api`. An alias or model id in a path is sent URL-encoded (model ids hold
 * slashes: `hf%2Forg%2Frepo%2Ffile`).
 */
import type { Handler } from "./gateway";
import type { Req } from "./types";
import { sendError, sendJson } from "../../lib/http/respond";
import { answer, pick } from "./route-helpers";

const param = (req: Req, name: string) => req.$params?.[name];

export const aliasAliases: Record<string, Handler> = {
  "GET /aliases"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("aliases.list"));
  },
  /** 201 with the new alias; 200 when it replaced one of that name. */
  "POST /aliases"(gw, req, res) {
    void (async () => req.$ctx.call("aliases.set", pick(req, ["alias", "model", "fallbacks"])))().then(
      (body) => {
        const { replaced, ...entry } = body as { replaced: boolean };
        sendJson(res, replaced ? 200 : 201, entry);
      },
      (err: unknown) => {
        if (sendError(res, err) >= 500) gw.logger.warn(`alias not set: ${(err as Error)?.message}`);
      },
    );
  },
  "DELETE /aliases/:alias"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("aliases.remove", { alias: param(req, "alias") }));
  },
  "PUT /fallbacks/:model"(gw, req, res) {
    answer(gw, res, async () =>
      req.$ctx.call("aliases.setFallbacks", { ...pick(req, ["fallbacks"]), model: param(req, "model") }),
    );
  },
  "DELETE /fallbacks/:model"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("aliases.removeFallbacks", { model: param(req, "model") }));
  },
};
