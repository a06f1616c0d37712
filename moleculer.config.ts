import type { BrokerOptions, LogLevels } from "moleculer";
import { clusterConfig, metricsConfig, routerConfig } from "./lib/config";
import { StopDuringStart } from "./lib/cluster/stop-during-start";

/** `nats://user:pass@host:4222` (or `Fake` in tests) into Moleculer's transporter option. */
export function transporter(raw: string): BrokerOptions["transporter"] {
  if (!raw) return null;
  if (raw === "Fake") return "Fake";
  const scheme = raw.split(":")[0].toLowerCase();
  if (scheme === "nats" || scheme === "tls") return { type: "NATS", options: { url: raw } };
  throw new Error(`TRANSPORTER must be a nats:// URL, got "${raw.replace(/\/\/[^@]*@/, "//***@")}"`);
}

/**
 * Metrics for a router process (one hosting the api): Moleculer's own and
 * ours, read through `/metrics`, and on LLM_ROUTER_METRICS_PORT by Moleculer's
 * Prometheus reporter when that is set.
 */
export function metricsOptions(hostsApi: boolean, ownPort = true): BrokerOptions["metrics"] {
  if (!hostsApi) return false;
  // one of several router processes: its /metrics on the API port answers for all (lib/metrics/merge.ts)
  const port = ownPort ? metricsConfig().port : null;
  return {
    enabled: true,
    reporter: port === null ? [] : [{ type: "Prometheus", options: { port, path: "/metrics" } }],
  };
}

/** Broker options, every one from the environment (docs/configuration.md). */
export function brokerConfig(): BrokerOptions {
  const cluster = clusterConfig();
  const level: LogLevels = cluster.logLevel;
  return {
    namespace: cluster.namespace,
    nodeID: cluster.nodeID,
    transporter: transporter(cluster.transporter ?? ""),
    serializer: "JSON",
    logger: {
      type: "Console",
      options: { level, formatter: "short", colors: process.stdout.isTTY === true, moduleColors: false },
    },
    logLevel: level,
    requestTimeout: routerConfig().requestTimeoutSecs * 1000,
    heartbeatInterval: cluster.heartbeatIntervalSecs,
    heartbeatTimeout: cluster.heartbeatTimeoutSecs,
    registry: { strategy: "RoundRobin", preferLocal: true },
    tracking: { enabled: true, shutdownTimeout: 10_000 },
    metrics: false,
    tracing: false,
    middlewares: [StopDuringStart],
  };
}

/** For moleculer-runner, which calls a function it is given: the environment is read then, not at import. */
export default brokerConfig;
