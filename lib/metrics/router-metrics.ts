/**
 * Our Prometheus metrics, on Moleculer's metric registry (so they sit beside
 * its built-in ones), and the text format `/metrics` answers.
 */
import { MetricReporters, type ServiceBroker } from "moleculer";
import type { NodeRecord } from "../cluster/types";
import { BUCKET_HISTOGRAM, LABELLED_COUNTER, registerFastMetrics } from "./fast-metrics";
import { BoundedLabels } from "./labels";
import { M } from "./names";
import type { StoredMetric } from "./merge";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export { M };

type Registry = NonNullable<ServiceBroker["metrics"]>;

export function registerRouterMetrics(metrics: Registry): void {
  if (!metrics.isEnabled() || metrics.hasMetric(M.requests)) return;
  // Moleculer's types with a cheaper observe and label key (lib/metrics/fast-metrics.ts): the same state and output;
  // (Moleculer's typings know only its own type names; the registry resolves any registered one)
  registerFastMetrics();
  const counter = (name: string, description: string, labelNames: string[]) =>
    metrics.register({ type: LABELLED_COUNTER as "counter", name, description, labelNames });
  const gauge = (name: string, description: string, labelNames: string[] = []) =>
    metrics.register({ type: "gauge", name, description, labelNames });
  const histogram = (name: string, description: string, labelNames: string[]) =>
    metrics.register({
      type: BUCKET_HISTOGRAM as "histogram",
      name,
      description,
      labelNames,
      buckets: LATENCY_BUCKETS,
    });
  counter(M.requests, "Inference requests answered, by model, node and HTTP status", ["model", "node", "status"]);
  histogram(M.latency, "Request duration in seconds", ["model"]);
  histogram(M.ttft, "Time to the first token (or the whole answer when not streamed) in seconds", ["model"]);
  counter(M.tokensIn, "Prompt tokens", ["model"]);
  counter(M.tokensOut, "Completion tokens", ["model"]);
  counter(M.retries, "Attempts retried on another node", ["model"]);
  gauge(M.queue, "Requests waiting at the router for a free node");
  histogram(M.queueWait, "Time requests waited in the router's queue, in seconds (only those that waited)", ["model"]);
  gauge(M.nodeUp, "1 when the node is online", ["node"]);
  gauge(M.nodeActive, "Requests running on the node", ["node"]);
  gauge(M.nodeCapacity, "Requests the node serves at once", ["node"]);
  gauge(M.nodeGpuUtil, "GPU utilisation (percent)", ["node", "gpu"]);
  gauge(M.nodeVramUsed, "VRAM in use (bytes)", ["node", "gpu"]);
  gauge(M.nodeVramTotal, "VRAM in total (bytes)", ["node", "gpu"]);
  counter(M.cloudRequests, "Requests sent to cloud providers, by provider and status", ["provider", "status"]);
  histogram(M.cloudLatency, "Cloud provider request latency in seconds", ["provider"]);
}

export interface FinishedRequest {
  model: string | null;
  node: string | null;
  status: number;
  durationMs: number;
  ttftMs: number | null;
  tokensIn: number | null;
  tokensOut: number | null;
  retries: number;
  /** Its wait in the router's queue (ms), when it waited. */
  queueMs?: number | null;
}

/** The model label values of this process (lib/metrics/labels.ts). */
const modelLabels = new BoundedLabels();

/**
 * A finished request in the metrics. Its model is a label value only when the
 * router served it (a node or runtime was tried, and the answer is no 404):
 * made-up names all count as `unknown`.
 */
export function recordRequest(metrics: Registry, r: FinishedRequest): void {
  if (!metrics.isEnabled()) return;
  const model = modelLabels.value(r.model, r.node !== null && r.status !== 404);
  metrics.increment(M.requests, { model, node: r.node ?? "", status: String(r.status) });
  metrics.observe(M.latency, r.durationMs / 1000, { model });
  if (r.ttftMs !== null) metrics.observe(M.ttft, r.ttftMs / 1000, { model });
  if (r.tokensIn) metrics.increment(M.tokensIn, { model }, r.tokensIn);
  if (r.tokensOut) metrics.increment(M.tokensOut, { model }, r.tokensOut);
  if (r.retries) metrics.increment(M.retries, { model }, r.retries);
  if (r.queueMs != null) metrics.observe(M.queueWait, r.queueMs / 1000, { model });
}

/** Per-node gauges from the registry's table, set just before a scrape. */
export function setNodeGauges(metrics: Registry, nodes: NodeRecord[], queued: number): void {
  metrics.set(M.queue, queued);
  for (const n of nodes) {
    const node = { node: n.id };
    metrics.set(M.nodeUp, n.status === "online" ? 1 : 0, node);
    metrics.set(M.nodeActive, n.active, node);
    metrics.set(M.nodeCapacity, n.capacity, node);
    n.gpus.forEach((g, i) => {
      const labels = { node: n.id, gpu: `${i}:${g.name}` };
      if (g.utilization !== null) metrics.set(M.nodeGpuUtil, g.utilization, labels);
      metrics.set(M.nodeVramUsed, g.vramUsed, labels);
      metrics.set(M.nodeVramTotal, g.vramTotal, labels);
    });
  }
}

/**
 * The Prometheus text of every metric (or of those matching `includes`),
 * without its own HTTP server; of `store` instead of this process's own
 * metrics when given (lib/metrics/merge.ts), labelled with its node ID.
 */
export function prometheusText(
  broker: ServiceBroker,
  includes?: string[],
  store?: { metrics: StoredMetric[]; nodeID: string },
): string {
  const reporter = new MetricReporters.Prometheus({ includes }) as unknown as {
    registry: Registry | { store: StoredMetric[] };
    defaultLabels: Record<string, string>;
    generatePrometheusResponse(): string;
  };
  reporter.registry = store ? { store: store.metrics } : broker.metrics!;
  reporter.defaultLabels = { namespace: broker.namespace, nodeID: store?.nodeID ?? broker.nodeID };
  return reporter.generatePrometheusResponse();
}
