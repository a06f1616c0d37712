/** Aliases of the node management routes, mounted on the api's `/api` route. */
import type { Handler } from "./gateway";
import type { Req } from "./types";
import { answer, pick } from "./route-helpers";
import { agentBaseUrl, parseApiKey, parseBaseUrl, parseName } from "../../lib/runtimes/runtime-url";

const id = (req: Req) => req.$params?.id;

export const nodeAliases: Record<string, Handler> = {
  "GET /nodes"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("registry.list"));
  },
  // the seed's name for the same table
  "GET /agents"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("registry.list"));
  },
  /** Registers an external OpenAI-compatible runtime by base URL. */
  "POST /nodes"(gw, req, res) {
    answer(
      gw,
      res,
      async () =>
        req.$ctx.call("registry.registerExternal", pick(req, ["base_url", "api_key", "name", "parallel", "endpoints"])),
      201,
    );
  },
  /** The seed's agent registration: `{machine_name, ip_address, runtime_port}` names an OpenAI-compatible runtime. */
  "POST /agents"(gw, req, res) {
    answer(
      gw,
      res,
      async () => {
        const b = pick(req, ["base_url", "api_key", "machine_name", "ip_address", "runtime_port", "parallel"]);
        // checked here so that a refusal names the field the client sent; the URL is built with the URL API
        const baseUrl =
          b.base_url !== undefined ? parseBaseUrl(b.base_url, "base_url") : agentBaseUrl(b.ip_address, b.runtime_port);
        const view = await req.$ctx.call<{ id: string }, object>("registry.registerExternal", {
          base_url: baseUrl,
          api_key: parseApiKey(b.api_key, "api_key"),
          name: parseName(b.machine_name, "machine_name"),
          parallel: b.parallel,
        });
        return { ...view, agent_id: view.id, status: "registered" };
      },
      201,
    );
  },
  /** A heartbeat from an external runtime's agent (the seed's `POST /api/health`), with its node token. */
  "POST /health"(gw, req, res) {
    answer(gw, res, async () => {
      if (req.$auth?.kind !== "node") throw new Error("node route reached without a node token");
      const b = pick(req, [
        "agent_id",
        "cpu_usage",
        "memory_usage",
        "active_requests",
        "gpu_usage",
        "gpu_memory_used_bytes",
        "gpu_memory_total_bytes",
        "gpu_model",
      ]);
      return req.$ctx.call("registry.agentHealth", { ...b, token: req.$auth.token });
    });
  },
  "GET /nodes/:id"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("registry.get", { id: id(req) }));
  },
  "GET /nodes/:id/metrics"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("registry.metrics", { id: id(req) }));
  },
  "PUT /nodes/:id/settings"(gw, req, res) {
    answer(gw, res, async () =>
      req.$ctx.call("registry.updateSettings", { ...pick(req, ["name", "tags", "notes"]), id: id(req) }),
    );
  },
  "POST /nodes/:id/drain"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("registry.drain", { id: id(req), draining: true }));
  },
  "POST /nodes/:id/undrain"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("registry.drain", { id: id(req), draining: false }));
  },
  /** The node finishes what it is running and leaves the cluster (its process exits). */
  "POST /nodes/:id/disconnect"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("registry.disconnect", { id: id(req) }));
  },
  "DELETE /nodes/:id"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("registry.remove", { id: id(req) }));
  },
};
