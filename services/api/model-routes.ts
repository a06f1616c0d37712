/**
 * Model catalog, distribution and tasks, mounted on `/api`. Model ids hold
 * slashes (`hf/org/repo/file`): in a path they are sent URL-encoded
 * (`hf%2Forg%2Frepo%2Ffile`).
 */
import type { Alias, Req } from "./route-helpers";
import { answer, pick } from "./route-helpers";

const param = (req: Req, name: string) => req.$params?.[name];
const query = (req: Req) => (req as Req & { query?: Record<string, unknown> }).query ?? {};

export const modelAliases: Record<string, Alias> = {
  "GET /models"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("models.list"));
  },
  "POST /models/register"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("models.register", pick(req, ["repo", "file"])), 201);
  },
  "GET /models/available"(req, res) {
    answer.call(this, res, async () => {
      const search = query(req).search;
      return req.$ctx.call("models.available", typeof search === "string" ? { search } : {});
    });
  },
  "POST /models/:id/download"(req, res) {
    answer.call(
      this,
      res,
      async () => req.$ctx.call("models.download", { ...pick(req, ["all", "nodes"]), id: param(req, "id") }),
      202,
    );
  },
  "DELETE /models/:id"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("models.remove", { id: param(req, "id") }));
  },
  "GET /tasks"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("models.tasks"));
  },
  "GET /tasks/:id"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("models.task", { id: param(req, "id") }));
  },
  "POST /tasks/:id/cancel"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("models.cancelTask", { id: param(req, "id") }));
  },
  "DELETE /nodes/:id/models/:model"(req, res) {
    answer.call(this, res, async () =>
      req.$ctx.call("models.removeFromNode", { node: param(req, "id"), model: param(req, "model") }),
    );
  },
};
