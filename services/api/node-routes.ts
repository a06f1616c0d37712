/** Aliases of the node management routes, mounted on the api's `/api` route. */
import type { Req, Alias } from "./route-helpers";
import { answer, pick } from "./route-helpers";

const id = (req: Req) => req.$params?.id;

export const nodeAliases: Record<string, Alias> = {
  "GET /nodes"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("registry.list"));
  },
  // the seed's name for the same table
  "GET /agents"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("registry.list"));
  },
  /** Registers an external OpenAI-compatible runtime by base URL. */
  "POST /nodes"(req, res) {
    answer.call(
      this,
      res,
      async () => req.$ctx.call("registry.registerExternal", pick(req, ["base_url", "api_key", "name", "parallel"])),
      201,
    );
  },
  "GET /nodes/:id"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("registry.get", { id: id(req) }));
  },
  "PUT /nodes/:id/settings"(req, res) {
    answer.call(this, res, async () =>
      req.$ctx.call("registry.updateSettings", { ...pick(req, ["name", "tags", "notes"]), id: id(req) }),
    );
  },
  "POST /nodes/:id/drain"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("registry.drain", { id: id(req), draining: true }));
  },
  "POST /nodes/:id/undrain"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("registry.drain", { id: id(req), draining: false }));
  },
  "DELETE /nodes/:id"(req, res) {
    answer.call(this, res, async () => req.$ctx.call("registry.remove", { id: id(req) }));
  },
};
