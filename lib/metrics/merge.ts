/**
 * `/metrics` for a router on several processes (LLM_ROUTER_PROCESSES): the
 * process a scrape reaches answers for all of them, each series labelled
 * with its `router_process` (sum over it for the router's totals). Facts
 * about the cluster (node gauges, the queue) are the same everywhere and
 * come once, from the process scraped, without that label.
 */
import { M } from "./names";

/** A metric as Moleculer's registry lists it (`metric.toObject()`). */
export interface MetricObject {
  type: string;
  name: string;
  description?: string;
  unit?: string;
  labelNames?: string[];
  values: Array<{ labels?: Record<string, unknown> } & Record<string, unknown>>;
}

export interface ProcessMetrics {
  process: string;
  metrics: MetricObject[];
}

const CLUSTER_WIDE = new Set<string>([
  M.queue,
  M.nodeUp,
  M.nodeActive,
  M.nodeCapacity,
  M.nodeGpuUtil,
  M.nodeVramUsed,
  M.nodeVramTotal,
]);

/** A metric in the shape the Prometheus reporter reads from a registry's store. */
export interface StoredMetric extends Omit<MetricObject, "values"> {
  snapshot(): MetricObject["values"];
}

/** The metrics of several processes as one registry store; the first is the process scraped. */
export function labelByProcess(parts: ProcessMetrics[]): StoredMetric[] {
  const byName = new Map<string, MetricObject>();
  parts.forEach((part, i) => {
    for (const m of part.metrics) {
      const clusterWide = CLUSTER_WIDE.has(m.name);
      if (clusterWide && i > 0) continue;
      let out = byName.get(m.name);
      if (!out) {
        out = {
          ...m,
          labelNames: clusterWide ? m.labelNames : [...(m.labelNames ?? []), "router_process"],
          values: [],
        };
        byName.set(m.name, out);
      }
      for (const v of m.values) {
        out.values.push(clusterWide ? v : { ...v, labels: { ...v.labels, router_process: part.process } });
      }
    }
  });
  return [...byName.values()].map(({ values, ...m }) => ({ ...m, snapshot: () => values }));
}
