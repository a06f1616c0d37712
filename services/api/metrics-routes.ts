/** `/metrics` (ours and Moleculer's) and `/metrics/cloud`, in Prometheus text format. */
import type { ServerResponse } from "node:http";
import type { NodeRecord } from "../../lib/cluster/types";
import { sendError } from "../../lib/http/respond";
import { prometheusText, setNodeGauges } from "../../lib/metrics/router-metrics";
import type { ApiThis } from "../api.service";
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
  res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  res.end(prometheusText(this.broker, cloudOnly ? ["cloud_*"] : undefined));
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
