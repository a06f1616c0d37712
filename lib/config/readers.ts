/**
 * Configuration read from the environment through the spec
 * (lib/config/spec.ts), one function per concern. The only place that reads
 * `process.env`: a test keeps the rest of the code from doing so.
 *
 * The functions read when called, so a service reads its configuration when
 * it is created (and a test may set process.env before that).
 */
import os from "node:os";
import { InvalidValue } from "./parsers";
import { ALL_SERVICES, ENV, ENV_VARS, type EnvVar, type LOG_LEVELS } from "./spec";

type Env = Record<string, string | undefined>;

/** A variable set to something its parser refuses; the message names it (and never shows a secret). */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The variable's text and the name it was found under (its own, else an alias); empty counts as unset. */
function lookup(v: EnvVar, env: Env): { name: string; raw: string } | undefined {
  for (const name of [v.name, ...v.aliases]) {
    const raw = env[name];
    if (raw !== undefined && raw !== "") return { name, raw };
  }
  return undefined;
}

function parseAs<T>(v: EnvVar<T>, raw: string, name: string): NonNullable<T> {
  try {
    return v.parse.parse(raw);
  } catch (err) {
    if (!(err instanceof InvalidValue)) throw err;
    const got = v.secret ? " (the value is a secret: not shown)" : `, got "${raw}"`;
    throw new ConfigError(name, `${name} ${err.message}${got}`);
  }
}

/** The variable's value: parsed when set, its default otherwise. Throws a ConfigError when it is set wrong. */
export function read<T>(v: EnvVar<T>, env: Env = process.env): T {
  const found = lookup(v as EnvVar, env);
  return found ? parseAs(v, found.raw, found.name) : v.fallback();
}

/** `text` parsed as the variable's value would be (errors name the variable). */
export function parseValue<T>(v: EnvVar<T>, text: string): NonNullable<T> {
  return parseAs(v, text, v.name);
}

/**
 * Every set variable parsed, so that a process refuses a bad value at start even where it is read
 * only later (on a request); throws one ConfigError naming each bad variable.
 */
export function checkEnv(env: Env = process.env): void {
  const problems: ConfigError[] = [];
  for (const v of ENV_VARS) {
    const found = lookup(v, env);
    if (!found) continue;
    try {
      parseAs(v, found.raw, found.name);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(err);
    }
  }
  if (problems.length) throw new ConfigError(problems[0].variable, problems.map((p) => p.message).join("; "));
}

/** Whether the variable (or one of its aliases) is set to something. */
export function isSet(v: EnvVar, env: Env = process.env): boolean {
  return lookup(v, env) !== undefined;
}

/** How the docs show a variable's default: `shown`, else the default written out, else "(none)". */
export function shownDefault(v: EnvVar): string {
  if (v.shown !== undefined) return v.shown;
  if (v.computed) throw new Error(`${v.name}: a computed default needs \`shown\` in the spec`);
  const d = v.fallback();
  if (d === undefined) return "(none)";
  const text = v.parse.show(d as never);
  return text === "" ? "(none)" : `\`${text}\``;
}

export interface EnvValue {
  name: string;
  /** The value this process would use, as text; a secret's is never shown. */
  value: string;
  /** `default`, or the name it was read from (the variable's own or an alias). */
  from: string;
}

/** What every variable is here (for `llm-router env --values`): secrets show only whether they are set. */
export function envValues(env: Env = process.env): EnvValue[] {
  return ENV_VARS.map((v) => {
    const found = lookup(v, env);
    if (!found) {
      const d = v.fallback();
      return {
        name: v.name,
        value: d === undefined ? (v.shown ?? "(none)") : v.parse.show(d as never),
        from: "default",
      };
    }
    if (v.secret) return { name: v.name, value: "(set, not shown)", from: found.name };
    try {
      return { name: v.name, value: v.parse.show(parseAs(v, found.raw, found.name)), from: found.name };
    } catch (err) {
      return { name: v.name, value: `invalid: ${(err as Error).message}`, from: found.name };
    }
  });
}

// ---- cluster ----------------------------------------------------------------

export interface ClusterConfig {
  /** TRANSPORTER; undefined: every service in one process. */
  transporter: string | undefined;
  nodeID: string;
  namespace: string;
  logLevel: (typeof LOG_LEVELS)[number];
  heartbeatIntervalSecs: number;
  heartbeatTimeoutSecs: number;
}

export function clusterConfig(): ClusterConfig {
  return {
    transporter: read(ENV.TRANSPORTER),
    nodeID: read(ENV.NODEID),
    namespace: read(ENV.NAMESPACE),
    logLevel: read(ENV.LOGLEVEL),
    heartbeatIntervalSecs: read(ENV.HEARTBEAT_INTERVAL),
    heartbeatTimeoutSecs: read(ENV.HEARTBEAT_TIMEOUT),
  };
}

export { ALL_SERVICES, SERVICE_GROUPS } from "./spec";

/** Expands `SERVICES` (or `raw`: names and group names) into service names, in a stable order. */
export function selectedServices(raw?: string): string[] {
  if (raw === undefined) return read(ENV.SERVICES);
  return raw.trim() ? parseValue(ENV.SERVICES, raw) : ALL_SERVICES;
}

// ---- router -----------------------------------------------------------------

export interface RouterConfig {
  host: string;
  port: number;
  /** Ollama's API on a listener of its own (services/api/ollama-server.ts); null: off. */
  ollamaPort: number | null;
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
  fallbackAfterSecs: number;
  healthCheckSecs: number;
}

export function routerConfig(): RouterConfig {
  return {
    host: read(ENV.LLM_ROUTER_HOST),
    port: read(ENV.LLM_ROUTER_PORT),
    ollamaPort: read(ENV.LLM_ROUTER_OLLAMA_PORT) ?? null,
    balancerMode: read(ENV.LLM_ROUTER_LOAD_BALANCER_MODE),
    nodeTimeoutSecs: read(ENV.LLM_ROUTER_NODE_TIMEOUT),
    requestTimeoutSecs: read(ENV.LLM_ROUTER_REQUEST_TIMEOUT),
    maxBodySize: read(ENV.LLM_ROUTER_MAX_BODY_SIZE),
    maxTokensLimit: read(ENV.LLM_ROUTER_MAX_TOKENS_LIMIT),
    maxRetries: read(ENV.LLM_ROUTER_MAX_RETRIES),
    failureThreshold: read(ENV.LLM_ROUTER_NODE_FAILURE_THRESHOLD),
    cooldownSecs: read(ENV.LLM_ROUTER_NODE_COOLDOWN_SECS),
    streamIdleTimeoutSecs: read(ENV.LLM_ROUTER_STREAM_IDLE_TIMEOUT),
    queueLimit: read(ENV.LLM_ROUTER_QUEUE_LIMIT),
    queueTimeoutSecs: read(ENV.LLM_ROUTER_QUEUE_TIMEOUT_SECS),
    fallbackAfterSecs: read(ENV.LLM_ROUTER_FALLBACK_AFTER_SECS),
    healthCheckSecs: read(ENV.LLM_ROUTER_HEALTH_CHECK_INTERVAL),
  };
}

/** LLM_ROUTER_PROCESSES: router processes sharing the HTTP port (`auto`: one per core). */
export function routerProcesses(): number {
  const n = read(ENV.LLM_ROUTER_PROCESSES);
  return n === "auto" ? os.availableParallelism() : n;
}

// ---- shutdown and health --------------------------------------------------------

/** Seconds a process drains on SIGTERM before it stops anyway. */
export function shutdownTimeoutSecs(): number {
  return read(ENV.LLM_SHUTDOWN_TIMEOUT_SECS);
}

/** LLM_HEALTH_FILE: the beat file a running process keeps fresh; null when unset. */
export function healthFile(): string | null {
  return read(ENV.LLM_HEALTH_FILE) ?? null;
}

// ---- storage and accounts --------------------------------------------------------

export interface StorageConfig {
  dataDir: string;
  /** LLM_ROUTER_DATABASE_URL: PostgreSQL, when set (it wins over MONGO_URI). */
  databaseUrl: string | undefined;
  mongoUri: string | undefined;
}

export function storageConfig(): StorageConfig {
  return {
    dataDir: read(ENV.LLM_ROUTER_DATA_DIR),
    databaseUrl: read(ENV.LLM_ROUTER_DATABASE_URL),
    mongoUri: read(ENV.MONGO_URI),
  };
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
    adminUsername: read(ENV.LLM_ROUTER_ADMIN_USERNAME),
    adminPassword: read(ENV.LLM_ROUTER_ADMIN_PASSWORD),
    jwtSecret: read(ENV.LLM_ROUTER_JWT_SECRET),
    jwtExpiresSecs: read(ENV.LLM_ROUTER_JWT_EXPIRES_SECS),
    authDisabled: read(ENV.LLM_ROUTER_AUTH_DISABLED),
    corsOrigins: read(ENV.LLM_ROUTER_CORS_ORIGINS),
  };
}

// ---- history and metrics ----------------------------------------------------------

export interface HistoryConfig {
  enabled: boolean;
  retentionDays: number;
  maxRecords: number;
  maxBodyBytes: number;
  /** LLM_ROUTER_HISTORY_STREAM: records through JetStream when the cluster allows (`auto`), or never. */
  stream: "auto" | "off";
  streamMaxBytes: number;
}

export function historyConfig(): HistoryConfig {
  return {
    enabled: read(ENV.LLM_ROUTER_HISTORY_ENABLED),
    retentionDays: read(ENV.LLM_ROUTER_HISTORY_RETENTION_DAYS),
    maxRecords: read(ENV.LLM_ROUTER_HISTORY_MAX_RECORDS),
    maxBodyBytes: read(ENV.LLM_ROUTER_HISTORY_MAX_BODY_BYTES),
    stream: read(ENV.LLM_ROUTER_HISTORY_STREAM),
    streamMaxBytes: read(ENV.LLM_ROUTER_HISTORY_STREAM_MAX_MB) * 1024 * 1024,
  };
}

export interface MetricsConfig {
  token: string | null;
  port: number | null;
  trustedProxies: string[];
}

export function metricsConfig(): MetricsConfig {
  return {
    token: read(ENV.LLM_ROUTER_METRICS_TOKEN) || null,
    port: read(ENV.LLM_ROUTER_METRICS_PORT) ?? null,
    trustedProxies: read(ENV.LLM_ROUTER_TRUSTED_PROXIES),
  };
}

// ---- clouds -------------------------------------------------------------------

export interface CloudConfig {
  /** The variable that holds its key, for the message telling an operator to set it. */
  keyVar: string;
  /** Undefined: the provider is off. */
  apiKey: string | undefined;
  /** Without a trailing slash. */
  baseUrl: string;
  /** The models /v1/models lists for it. */
  models: string[];
}

/** Each cloud provider's settings, by provider name (the names of lib/providers/index.ts's PROVIDERS). */
export function cloudConfig(): Record<string, CloudConfig> {
  const cloud = (key: EnvVar<string | undefined>, base: EnvVar<string>, models: EnvVar<string[]>): CloudConfig => ({
    keyVar: key.name,
    apiKey: read(key),
    baseUrl: read(base),
    models: read(models),
  });
  return {
    openai: cloud(ENV.OPENAI_API_KEY, ENV.OPENAI_BASE_URL, ENV.OPENAI_MODELS),
    google: cloud(ENV.GOOGLE_API_KEY, ENV.GOOGLE_API_BASE_URL, ENV.GOOGLE_MODELS),
    anthropic: cloud(ENV.ANTHROPIC_API_KEY, ENV.ANTHROPIC_API_BASE_URL, ENV.ANTHROPIC_MODELS),
  };
}

// ---- models -------------------------------------------------------------------

export interface HubConfig {
  /** HF_BASE_URL, without a trailing slash. */
  baseUrl: string;
  /** HF_TOKEN */
  token?: string;
}

export function hubConfig(): HubConfig {
  const token = read(ENV.HF_TOKEN);
  return token ? { baseUrl: read(ENV.HF_BASE_URL), token } : { baseUrl: read(ENV.HF_BASE_URL) };
}

export interface ConvertConfig {
  /** LLM_ROUTER_CONVERT_SCRIPT; empty when unset. */
  script: string;
  /** LLM_ROUTER_CONVERT_PYTHON */
  python: string;
  /** LLM_ROUTER_CONVERT_OUTTYPE */
  outtype: string;
}

export function convertConfig(): ConvertConfig {
  return {
    script: read(ENV.LLM_ROUTER_CONVERT_SCRIPT) ?? "",
    python: read(ENV.LLM_ROUTER_CONVERT_PYTHON),
    outtype: read(ENV.LLM_ROUTER_CONVERT_OUTTYPE),
  };
}
