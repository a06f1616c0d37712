/** The model lists (`/v1/models`, the playground's) and the dashboard's live event stream. */
import { sendJson } from "../../lib/http/respond";
import { routerCore } from "../../lib/core/router-core";
import type { ModelEntry } from "../../lib/cluster/node-table";
import { modelNotFound } from "../../lib/openai/errors";
import type { Req } from "./types";
import type { Gateway } from "./gateway";
import type { Handler } from "./gateway";

function modelObject(m: ModelEntry) {
  return {
    id: m.id,
    object: "model",
    created: m.created,
    owned_by: "llm-router",
    status: m.status,
    nodes: m.nodes,
    available_on: m.available_on,
  };
}

export type ModelObject = ReturnType<typeof modelObject> & { alias_of?: string };

/**
 * Models on nodes that serve now (`loaded`, or `available`: on a node's disk,
 * loaded by the first request), the configured clouds' models, then the
 * aliases (with the status of the model each names).
 */
export async function allModels(req: Req): Promise<ModelObject[]> {
  const ctx = req.$ctx;
  const local = await ctx.call<ModelEntry[]>("registry.models");
  const cloud = ctx.broker.registry.hasService("cloud", ctx.broker.nodeID)
    ? await ctx.call<string[]>("cloud.models")
    : [];
  const models: ModelObject[] = [
    ...local.map(modelObject),
    ...cloud.map((id) => ({
      id,
      object: "model",
      created: 0,
      owned_by: id.split(":")[0],
      status: "available" as const,
      nodes: [] as string[],
      available_on: [] as string[],
    })),
  ];
  const routes = routerCore(ctx.broker).routes;
  for (const a of routes?.list().aliases ?? []) {
    const target = routes!.resolve(a.alias);
    const t = models.find((m) => m.id === target);
    models.push({
      id: a.alias,
      object: "model",
      created: t?.created ?? 0,
      owned_by: t?.owned_by ?? "llm-router",
      status: t?.status ?? "available",
      nodes: t?.nodes ?? [],
      available_on: t?.available_on ?? [],
      alias_of: target,
    });
  }
  return models;
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
