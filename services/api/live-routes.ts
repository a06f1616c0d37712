/** The model lists (`/v1/models`, the playground's) and the dashboard's live event stream. */
import { sendJson } from "../../lib/http/respond";
import type { ModelEntry } from "../../lib/cluster/node-table";
import { modelNotFound } from "../../lib/openai/errors";
import type { Req } from "./types";
import type { Gateway } from "./gateway";
import type { Handler } from "./gateway";

function modelObject(m: ModelEntry) {
  return { id: m.id, object: "model", created: m.created, owned_by: "llm-router", nodes: m.nodes };
}

/** Models on nodes that serve now, then the configured clouds' models. */
async function allModels(req: Req) {
  const ctx = req.$ctx;
  const local = await ctx.call<ModelEntry[]>("registry.models");
  const cloud = ctx.broker.registry.hasService("cloud", ctx.broker.nodeID)
    ? await ctx.call<string[]>("cloud.models")
    : [];
  return [
    ...local.map(modelObject),
    ...cloud.map((id) => ({ id, object: "model", created: 0, owned_by: id.split(":")[0], nodes: [] as string[] })),
  ];
}

async function listModels(gw: Gateway, req: Req) {
  return { object: "list", data: (await allModels(req)).filter((m) => gw.visibleTo(req, m.id)) };
}

async function getModel(gw: Gateway, req: Req) {
  const id = req.$params?.id ?? "";
  const m = (await allModels(req)).find((x) => x.id === id);
  if (!m || !gw.visibleTo(req, id)) throw modelNotFound(id);
  return m;
}

/** Mounted on `/v1`. */
export const modelListAliases: Record<string, Handler> = {
  "GET /models"(gw, req, res) {
    gw.runHandler(res, async () => sendJson(res, 200, await listModels(gw, req)));
  },
  "GET /models/*id"(gw, req, res) {
    gw.runHandler(res, async () => sendJson(res, 200, await getModel(gw, req)));
  },
};

/** Mounted on `/api`. */
export const liveAliases: Record<string, Handler> = {
  "GET /playground/models"(gw, req, res) {
    gw.runHandler(res, async () => sendJson(res, 200, { object: "list", data: await allModels(req) }));
  },
  // the dashboard's live updates: nodes, finished requests, task progress
  "GET /dashboard/events"(gw, req, res) {
    gw.live.add(res);
    req.$ctx
      .call("registry.list")
      .then((nodes) => gw.live.send("nodes", nodes, res))
      .catch(() => undefined);
  },
};
