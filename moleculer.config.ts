import os from "node:os";
import type { BrokerOptions, LogLevels } from "moleculer";
import { envInt, envString, metricsConfig, routerConfig } from "./lib/config";

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"];

function logLevel(): LogLevels {
  const raw = envString("LOGLEVEL", envString("LLM_ROUTER_LOG_LEVEL", "info")).toLowerCase();
  if (!LEVELS.includes(raw)) throw new Error(`LOGLEVEL must be one of ${LEVELS.join(", ")}, got "${raw}"`);
  return raw as LogLevels;
}

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

/** Broker options, every one from the environment (see the README's table). */
export function brokerConfig(): BrokerOptions {
  const level = logLevel();
  return {
    namespace: envString("NAMESPACE", "llm-router"),
    nodeID: envString("NODEID", `${os.hostname()}-${process.pid}`),
    transporter: transporter(envString("TRANSPORTER", "")),
    serializer: "JSON",
    logger: {
      type: "Console",
      options: { level, formatter: "short", colors: process.stdout.isTTY === true, moduleColors: false },
    },
    logLevel: level,
    requestTimeout: routerConfig().requestTimeoutSecs * 1000,
    heartbeatInterval: envInt("HEARTBEAT_INTERVAL", 5, 1),
    heartbeatTimeout: envInt("HEARTBEAT_TIMEOUT", 15, 2),
    registry: { strategy: "RoundRobin", preferLocal: true },
    tracking: { enabled: true, shutdownTimeout: 10_000 },
    metrics: false,
    tracing: false,
  };
}

export default brokerConfig();
