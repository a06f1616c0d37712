/**
 * Model catalog, distribution and tasks, mounted on `/api`. Model ids hold
 * slashes (`hf/org/repo/file`): in a path they are sent URL-encoded
 * (`hf%2Forg%2Frepo%2Ffile`).
 */
import type { Handler } from "./gateway";
import type { Req } from "./types";
import { sendError, sendJson } from "../../lib/http/respond";
import { answer, pick, queryOf } from "./route-helpers";

const param = (req: Req, name: string) => req.$params?.[name];

export const modelAliases: Record<string, Handler> = {
  "GET /models"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("models.list"));
  },
  /** 201 with the catalog entry; 202 with the task when the repository has to be converted first. */
  "POST /models/register"(gw, req, res) {
    void (async () => req.$ctx.call("models.register", pick(req, ["repo", "file", "outtype"])))().then(
      (body) => sendJson(res, (body as { task?: unknown }).task ? 202 : 201, body),
      (err: unknown) => {
        if (sendError(res, err) >= 500) gw.logger.warn(`model registration failed: ${(err as Error)?.message}`);
      },
    );
  },
  "GET /models/available"(gw, req, res) {
    answer(gw, res, async () => {
      const search = queryOf(req).search;
      return req.$ctx.call("models.available", typeof search === "string" ? { search } : {});
    });
  },
  "POST /models/:id/download"(gw, req, res) {
    answer(
      gw,
      res,
      async () => req.$ctx.call("models.download", { ...pick(req, ["all", "nodes"]), id: param(req, "id") }),
      202,
    );
  },
  "POST /models/:id/load"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("models.load", { ...pick(req, ["node"]), id: param(req, "id") }));
  },
  "POST /models/:id/unload"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("models.unload", { ...pick(req, ["node"]), id: param(req, "id") }));
  },
  "DELETE /models/:id"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("models.remove", { id: param(req, "id") }));
  },
  "GET /tasks"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("models.tasks"));
  },
  "GET /tasks/:id"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("models.task", { id: param(req, "id") }));
  },
  "POST /tasks/:id/cancel"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("models.cancelTask", { id: param(req, "id") }));
  },
  "POST /tasks/:id/restart"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("models.restartTask", { id: param(req, "id") }));
  },
  "DELETE /nodes/:id/models/:model"(gw, req, res) {
    answer(gw, res, async () =>
      req.$ctx.call("models.removeFromNode", { node: param(req, "id"), model: param(req, "model") }),
    );
  },
};
