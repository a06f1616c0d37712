/** `/metrics` (ours and Moleculer's) and `/metrics/cloud`, in Prometheus text format. */
import type { ServerResponse } from "node:http";
import type { NodeRecord } from "../../lib/cluster/types";
import { sendError } from "../../lib/http/respond";
import { labelByProcess, type MetricObject, type StoredMetric } from "../../lib/metrics/merge";
import { prometheusText, setNodeGauges } from "../../lib/metrics/router-metrics";
import type { ApiThis } from "./types";
import type { Handler } from "./fast-lane";
import type { Req } from "./route-helpers";

async function scrape(this: ApiThis, req: Req, res: ServerResponse, cloudOnly: boolean): Promise<void> {
  const ctx = req.$ctx;
  this.recordEnded(); // requests that ended a moment ago are counted too
  if (!cloudOnly && ctx.broker.registry.hasService("registry", ctx.broker.nodeID)) {
    const [nodes, stats] = await Promise.all([
      ctx.call<NodeRecord[]>("registry.records"),
      ctx.call<{ queued: number }>("balancer.stats"),
    ]);
    setNodeGauges(this.broker.metrics, nodes, stats.queued);
  }
  const store = await processesOfThisRouter.call(this, req);
  res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  res.end(prometheusText(this.broker, cloudOnly ? ["cloud_*"] : undefined, store));
}

/**
 * With LLM_ROUTER_PROCESSES > 1 the scrape reaches one process: it asks the
 * others of its router for their metrics and answers for all of them
 * (lib/metrics/merge.ts), under process 0's node ID. Undefined for a router
 * on one process.
 */
async function processesOfThisRouter(
  this: ApiThis,
  req: Req,
): Promise<{ metrics: StoredMetric[]; nodeID: string } | undefined> {
  const meta = this.broker.metadata as { routerGroup?: string; routerProcess?: number };
  if (meta.routerGroup === undefined) return undefined;
  const nodes = (
    this.broker.registry.nodes.toArray() as Array<{ id: string; available: boolean; metadata?: typeof meta }>
  ).filter((n) => n.available && n.id !== this.broker.nodeID && n.metadata?.routerGroup === meta.routerGroup);
  const others = await Promise.all(
    nodes.map((n) =>
      req.$ctx
        .call<MetricObject[], object>("api.metricsSnapshot", {}, { nodeID: n.id })
        .then((metrics) => ({ process: String(n.metadata?.routerProcess), metrics }))
        .catch(() => null),
    ),
  );
  const own = { process: String(meta.routerProcess), metrics: this.broker.metrics.list() as unknown as MetricObject[] };
  // labelled as process 0 whichever process answers, so a series keeps its labels from scrape to scrape
  const first = meta.routerProcess === 0 ? this.broker.nodeID : nodes.find((n) => n.metadata?.routerProcess === 0)?.id;
  return { metrics: labelByProcess([own, ...others.filter((p) => p !== null)]), nodeID: first ?? this.broker.nodeID };
}

function serve(this: ApiThis, req: Req, res: ServerResponse, cloudOnly: boolean): void {
  scrape.call(this, req, res, cloudOnly).catch((err: unknown) => sendError(res, err));
}

export const metricsAliases: Record<string, Handler> = {
  "GET /metrics"(req, res) {
    serve.call(this, req, res, false);
  },
  "GET /metrics/cloud"(req, res) {
    serve.call(this, req, res, true);
  },
};
