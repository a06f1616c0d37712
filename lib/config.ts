/**
 * Configuration read from the environment, one function per concern; the
 * variables themselves are listed in lib/env-vars.ts.
 */
import os from "node:os";
import path from "node:path";

export { ENV_VARS, type EnvVar } from "./env-vars";

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === "" ? undefined : v;
}

function expandHome(p: string): string {
  return p.startsWith("~") ? path.join(os.homedir(), p.slice(1)) : p;
}

export function envInt(name: string, fallback: number, min = 0): number {
  const raw = env(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    throw new Error(`${name} must be a number >= ${min}, got "${raw}"`);
  }
  return n;
}

export function envBool(name: string, fallback: boolean): boolean {
  const raw = env(name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

export function envString(name: string, fallback: string): string {
  return env(name) ?? fallback;
}

export interface RouterConfig {
  host: string;
  port: number;
  balancerMode: string;
  nodeTimeoutSecs: number;
  requestTimeoutSecs: number;
  maxBodySize: string;
  maxTokensLimit: number;
  maxRetries: number;
  failureThreshold: number;
  cooldownSecs: number;
  streamIdleTimeoutSecs: number;
  queueLimit: number;
  queueTimeoutSecs: number;
  healthCheckSecs: number;
}

export interface HistoryConfig {
  enabled: boolean;
  retentionDays: number;
  maxRecords: number;
  maxBodyBytes: number;
}

export function historyConfig(): HistoryConfig {
  return {
    enabled: envBool("LLM_ROUTER_HISTORY_ENABLED", true),
    retentionDays: envInt("LLM_ROUTER_HISTORY_RETENTION_DAYS", 7, 1),
    maxRecords: envInt("LLM_ROUTER_HISTORY_MAX_RECORDS", 20_000, 1),
    maxBodyBytes: envInt("LLM_ROUTER_HISTORY_MAX_BODY_BYTES", 65_536, 256),
  };
}

export interface MetricsConfig {
  token: string | null;
  port: number | null;
  trustedProxies: string[];
}

export function metricsConfig(): MetricsConfig {
  const port = env("LLM_ROUTER_METRICS_PORT");
  return {
    token: env("LLM_ROUTER_METRICS_TOKEN") || null,
    port: port ? envInt("LLM_ROUTER_METRICS_PORT", 0, 0) : null,
    trustedProxies: (env("LLM_ROUTER_TRUSTED_PROXIES") ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  };
}

/** Seconds a process drains on SIGTERM before it stops anyway. */
/** LLM_ROUTER_PROCESSES: router processes sharing the HTTP port (`auto`: one per core). */
export function routerProcesses(): number {
  const raw = env("LLM_ROUTER_PROCESSES");
  if (raw === "auto") return os.availableParallelism();
  return envInt("LLM_ROUTER_PROCESSES", 1, 1);
}

export function shutdownTimeoutSecs(): number {
  return envInt("LLM_SHUTDOWN_TIMEOUT_SECS", 30, 0);
}

export function routerConfig(): RouterConfig {
  return {
    host: envString("LLM_ROUTER_HOST", "0.0.0.0"),
    port: envInt("LLM_ROUTER_PORT", 8080),
    balancerMode: envString("LLM_ROUTER_LOAD_BALANCER_MODE", "auto"),
    nodeTimeoutSecs: envInt("LLM_ROUTER_NODE_TIMEOUT", 60, 1),
    requestTimeoutSecs: envInt("LLM_ROUTER_REQUEST_TIMEOUT", 600, 1),
    maxBodySize: envString("LLM_ROUTER_MAX_BODY_SIZE", "4mb"),
    maxTokensLimit: envInt("LLM_ROUTER_MAX_TOKENS_LIMIT", 32768, 1),
    maxRetries: envInt("LLM_ROUTER_MAX_RETRIES", 2, 0),
    failureThreshold: envInt("LLM_ROUTER_NODE_FAILURE_THRESHOLD", 3, 1),
    cooldownSecs: envInt("LLM_ROUTER_NODE_COOLDOWN_SECS", 30, 0),
    streamIdleTimeoutSecs: envInt("LLM_ROUTER_STREAM_IDLE_TIMEOUT", 60, 1),
    queueLimit: envInt("LLM_ROUTER_QUEUE_LIMIT", 1024, 0),
    queueTimeoutSecs: envInt("LLM_ROUTER_QUEUE_TIMEOUT_SECS", 30, 1),
    healthCheckSecs: envInt("LLM_ROUTER_HEALTH_CHECK_INTERVAL", 30, 1),
  };
}

export type GpuSetting = "auto" | "cuda" | "vulkan" | "metal" | false;

export interface NodeConfig {
  modelsDir: string;
  name: string;
  parallel: number;
  threads: number;
  contextSize: number;
  gpu: GpuSetting;
  heartbeatSecs: number;
  demoModel: boolean;
  engine: "llama" | "instant";
  instantMsPerToken: number;
}

function gpuSetting(): GpuSetting {
  const raw = envString("LLM_NODE_GPU", "auto").toLowerCase();
  if (raw === "false" || raw === "off" || raw === "cpu") return false;
  if (raw === "auto" || raw === "cuda" || raw === "vulkan" || raw === "metal") return raw;
  throw new Error(`LLM_NODE_GPU must be auto, cuda, vulkan, metal or false, got "${raw}"`);
}

function engineSetting(): NodeConfig["engine"] {
  const raw = envString("LLM_NODE_ENGINE", "llama");
  if (raw === "llama" || raw === "instant") return raw;
  throw new Error(`LLM_NODE_ENGINE must be llama or instant, got "${raw}"`);
}

export function nodeConfig(): NodeConfig {
  return {
    modelsDir: expandHome(envString("LLM_NODE_MODELS_DIR", "~/.runtime/models")),
    name: envString("LLM_NODE_NAME", os.hostname()),
    parallel: envInt("LLM_NODE_PARALLEL", 4, 1),
    threads: envInt("LLM_NODE_THREADS", Math.max(1, Math.floor(os.cpus().length / 2)), 1),
    contextSize: envInt("LLM_NODE_CONTEXT_SIZE", 4096, 64),
    gpu: gpuSetting(),
    heartbeatSecs: envInt("LLM_NODE_HEARTBEAT_SECS", 10, 1),
    demoModel: envBool("LLM_NODE_DEMO_MODEL", true),
    engine: engineSetting(),
    instantMsPerToken: envInt("LLM_NODE_INSTANT_MS_PER_TOKEN", 0, 0),
  };
}

export const ALL_SERVICES = [
  "api",
  "registry",
  "balancer",
  "auth",
  "apikeys",
  "history",
  "cloud",
  "models",
  "inference",
];
export const SERVICE_GROUPS: Record<string, string[]> = {
  router: ["api", "registry", "balancer", "auth", "apikeys", "history", "cloud", "models"],
  /** A router replica: the HTTP gateway and routing; accounts, keys, history and models are called on a `router`. */
  gateway: ["api", "registry", "balancer", "cloud"],
  all: ALL_SERVICES,
};

/** Expands `SERVICES` (names and group names) into service names, in a stable order. */
export function selectedServices(raw = env("SERVICES")): string[] {
  if (!raw) return ALL_SERVICES;
  const names = new Set<string>();
  for (const part of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const group = SERVICE_GROUPS[part];
    if (group) group.forEach((g) => names.add(g));
    else if (ALL_SERVICES.includes(part)) names.add(part);
    else throw new Error(`SERVICES: unknown service "${part}" (known: ${ALL_SERVICES.join(", ")}, router, all)`);
  }
  return ALL_SERVICES.filter((s) => names.has(s));
}

export interface StorageConfig {
  dataDir: string;
  mongoUri: string | undefined;
}

export function storageConfig(): StorageConfig {
  const dir = envString("LLM_ROUTER_DATA_DIR", "~/.llm-router");
  return { dataDir: dir === ":memory:" ? dir : expandHome(dir), mongoUri: env("MONGO_URI") };
}

export interface AuthConfig {
  adminUsername: string;
  adminPassword: string | undefined;
  jwtSecret: string | undefined;
  jwtExpiresSecs: number;
  authDisabled: boolean;
  corsOrigins: string[];
}

export function authConfig(): AuthConfig {
  return {
    adminUsername: envString("LLM_ROUTER_ADMIN_USERNAME", "admin"),
    adminPassword: env("LLM_ROUTER_ADMIN_PASSWORD"),
    jwtSecret: env("LLM_ROUTER_JWT_SECRET"),
    jwtExpiresSecs: envInt("LLM_ROUTER_JWT_EXPIRES_SECS", 86400, 1),
    authDisabled: envBool("LLM_ROUTER_AUTH_DISABLED", false),
    corsOrigins: envString("LLM_ROUTER_CORS_ORIGINS", "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  };
}
