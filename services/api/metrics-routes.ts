/** `/metrics` (ours and Moleculer's) and `/metrics/cloud`, in Prometheus text format. */
import type { ServerResponse } from "node:http";
import type { NodeRecord } from "../../lib/cluster/types";
import { sendError } from "../../lib/http/respond";
import { labelByProcess, type MetricObject, type StoredMetric } from "../../lib/metrics/merge";
import { prometheusText, setNodeGauges } from "../../lib/metrics/router-metrics";
import type { Gateway } from "./gateway";
import type { Handler } from "./gateway";
import type { Req } from "./types";

async function scrape(gw: Gateway, req: Req, res: ServerResponse, cloudOnly: boolean): Promise<void> {
  const ctx = req.$ctx;
  gw.recordEnded(); // requests that ended a moment ago are counted too
  if (!cloudOnly && ctx.broker.registry.hasService("registry", ctx.broker.nodeID)) {
    const [nodes, stats] = await Promise.all([
      ctx.call<NodeRecord[]>("registry.records"),
      ctx.call<{ queued: number }>("balancer.stats"),
    ]);
    setNodeGauges(gw.broker.metrics, nodes, stats.queued);
  }
  const store = await processesOfThisRouter(gw, req);
  res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  res.end(prometheusText(gw.broker, cloudOnly ? ["cloud_*"] : undefined, store));
}

/**
 * With LLM_ROUTER_PROCESSES > 1 the scrape reaches one process: it asks the
 * others of its router for their metrics and answers for all of them
 * (lib/metrics/merge.ts), under process 0's node ID. Undefined for a router
 * on one process.
 */
async function processesOfThisRouter(
  gw: Gateway,
  req: Req,
): Promise<{ metrics: StoredMetric[]; nodeID: string } | undefined> {
  const meta = gw.broker.metadata as { routerGroup?: string; routerProcess?: number };
  if (meta.routerGroup === undefined) return undefined;
  const nodes = (
    gw.broker.registry.nodes.toArray() as Array<{ id: string; available: boolean; metadata?: typeof meta }>
  ).filter((n) => n.available && n.id !== gw.broker.nodeID && n.metadata?.routerGroup === meta.routerGroup);
  const others = await Promise.all(
    nodes.map((n) =>
      req.$ctx
        .call<MetricObject[], object>("api.metricsSnapshot", {}, { nodeID: n.id })
        .then((metrics) => ({ process: String(n.metadata?.routerProcess), metrics }))
        .catch(() => null),
    ),
  );
  const own = { process: String(meta.routerProcess), metrics: gw.broker.metrics.list() as unknown as MetricObject[] };
  // labelled as process 0 whichever process answers, so a series keeps its labels from scrape to scrape
  const first = meta.routerProcess === 0 ? gw.broker.nodeID : nodes.find((n) => n.metadata?.routerProcess === 0)?.id;
  return { metrics: labelByProcess([own, ...others.filter((p) => p !== null)]), nodeID: first ?? gw.broker.nodeID };
}

function serve(gw: Gateway, req: Req, res: ServerResponse, cloudOnly: boolean): void {
  scrape(gw, req, res, cloudOnly).catch((err: unknown) => sendError(res, err));
}

export const metricsAliases: Record<string, Handler> = {
  "GET /metrics"(gw, req, res) {
    serve(gw, req, res, false);
  },
  "GET /metrics/cloud"(gw, req, res) {
    serve(gw, req, res, true);
  },
};
