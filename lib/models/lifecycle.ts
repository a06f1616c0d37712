/**
 * An operator's load and unload (`POST /api/models/:id/load|unload`, the CLI,
 * the ops console, the dashboard's buttons): which node does it, or why none
 * can (a clear 404/409/422). Pure over the node table.
 */
import { catalogEntry, type NodeTable } from "../cluster/node-table";
import type { NodeRecord } from "../cluster/types";
import { apiError } from "../openai/errors";
import { placeLoad } from "../routing/placement";

function inferenceNode(table: NodeTable, nodeID: string): NodeRecord {
  const n = table.get(nodeID);
  if (!n || n.baseUrl || n.status !== "online") {
    throw apiError(404, `No online inference node '${nodeID}'.`, "node_not_found", { param: "node" });
  }
  return n;
}

/** The node to load `model` on: the one named, else the one that can take it soonest; null when it is loaded there already. */
export function loadTarget(table: NodeTable, model: string, nodeID?: string): { node: string; loaded: boolean } {
  if (nodeID) {
    const n = inferenceNode(table, nodeID);
    if (n.models.some((m) => m.id === model)) return { node: n.id, loaded: true };
    if (!catalogEntry(n, model)) {
      throw apiError(404, `The node '${nodeID}' has no model '${model}'.`, "model_not_found", { param: "model" });
    }
    return { node: n.id, loaded: false };
  }
  const loaded = table.serving(model).find((n) => !n.baseUrl);
  if (loaded) return { node: loaded.id, loaded: true };
  const place = placeLoad(table.loadable(model), model, (n) => n.active + n.queued);
  if (place) return { node: place.nodeID, loaded: false };
  const failures = table.loadFailures(model);
  if (failures.length) {
    const why = failures.map((f) => `${f.node}: ${f.error}`).join("; ");
    throw apiError(422, `The model '${model}' failed to load (${why}).`, "model_load_failed", { param: "model" });
  }
  if (table.loading(model).length) {
    const on = table.loading(model)[0].id;
    return { node: on, loaded: false };
  }
  if (table.loadable(model).length) {
    throw apiError(
      409,
      `The model '${model}' does not fit on any node now (too large for their memory budgets, or their memory is held by busy or pinned models).`,
      "model_does_not_fit",
      { param: "model" },
    );
  }
  throw apiError(404, `No online node has the model '${model}'.`, "model_not_found", { param: "model" });
}

/** The nodes to unload `model` from: the one named, else every node that has it loaded. */
export function unloadTargets(table: NodeTable, model: string, nodeID?: string): string[] {
  if (nodeID) {
    const n = inferenceNode(table, nodeID);
    if (!n.models.some((m) => m.id === model)) {
      throw apiError(409, `The model '${model}' is not loaded on '${nodeID}'.`, "model_not_loaded", { param: "model" });
    }
    return [n.id];
  }
  const nodes = table.list().filter((n) => !n.baseUrl && n.status === "online" && n.models.some((m) => m.id === model));
  if (nodes.length === 0) {
    throw apiError(409, `The model '${model}' is not loaded on any node.`, "model_not_loaded", { param: "model" });
  }
  return nodes.map((n) => n.id);
}
