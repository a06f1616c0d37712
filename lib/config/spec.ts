/**
 * Every environment variable the project reads, once: its name, its typed
 * default (and how the docs show it when that differs), how its text is
 * parsed and checked, and its line of documentation, grouped by concern.
 * The readers (lib/config/readers.ts) read through it, docs/configuration.md
 * and `llm-router env` are generated from it (`npm run docs:config`), and
 * test/unit/lib/config/config.test.ts checks that nothing reads the environment around it.
 */
import os from "node:os";
import path from "node:path";
import {
  bool,
  byteSize,
  custom,
  filePath,
  int,
  InvalidValue,
  list,
  memorySize,
  num,
  oneOf,
  seconds,
  str,
  url,
  type Parser,
} from "./parsers";

/** One environment variable. `T` is what its reader gets (with `undefined` when it has no default). */
export interface EnvVar<T = unknown> {
  readonly name: string;
  /** The id of its group (a heading in the docs). */
  readonly group: string;
  readonly parse: Parser<NonNullable<T>>;
  /** The value when the variable is unset or empty: the real, typed default. */
  readonly fallback: () => T;
  /** The default is computed when read (the host name, the number of cores): the docs need `shown`. */
  readonly computed: boolean;
  /** How the docs show the default when it is not simply the default written out. */
  readonly shown?: string;
  /** Its line in the docs. */
  readonly doc: string;
  /** Other names read when this one is unset, in order. */
  readonly aliases: readonly string[];
  /** Its value is never printed (keys, passwords, tokens, URLs with credentials). */
  readonly secret: boolean;
}

type VarDef<P> = {
  parse: Parser<P>;
  shown?: string;
  doc: string;
  aliases?: string[];
  secret?: boolean;
};
type Def<T> = Omit<EnvVar<T>, "name" | "group">;

/** A variable with a default: its reader gets a `P`. */
function v<P>(def: VarDef<P> & { default: NoInfer<P> | (() => NoInfer<P>) }): Def<P>;
/** A variable without one: its reader gets a `P` or undefined. */
function v<P>(def: VarDef<P>): Def<P | undefined>;
function v<P>(def: VarDef<P> & { default?: P | (() => P) }): Def<P | undefined> {
  const d = def.default;
  return {
    parse: def.parse as Parser<NonNullable<P>>,
    fallback: typeof d === "function" ? (d as () => P) : () => d,
    computed: typeof d === "function",
    shown: def.shown,
    doc: def.doc,
    aliases: def.aliases ?? [],
    secret: def.secret ?? false,
  };
}

export interface ConfigGroup {
  id: string;
  title: string;
  /** A paragraph under the group's heading in the docs. */
  about: string;
  vars: EnvVar[];
}

type Named<G extends string, S> = { [K in keyof S & string]: S[K] & { readonly name: K; readonly group: G } };

function group<const G extends string, S extends Record<string, Def<unknown>>>(
  id: G,
  title: string,
  about: string,
  defs: S,
): { id: G; title: string; about: string; vars: Named<G, S> } {
  const vars = Object.fromEntries(Object.entries(defs).map(([name, d]) => [name, { ...d, name, group: id }]));
  return { id, title, about, vars: vars as Named<G, S> };
}

// ---- services ---------------------------------------------------------------

/** What a router process runs (`SERVICES=router`): every service but the inference node's. */
const ROUTER_SERVICES = [
  "api",
  "registry",
  "balancer",
  "auth",
  "apikeys",
  "history",
  "responses",
  "cloud",
  "models",
  "aliases",
  "audit",
  "usage",
];
export const ALL_SERVICES = [...ROUTER_SERVICES, "inference"];
export const SERVICE_GROUPS: Record<string, string[]> = {
  router: ROUTER_SERVICES,
  /** A router replica: the HTTP gateway and routing; accounts, keys, history, stored responses and models are called on a `router`. */
  gateway: ["api", "registry", "balancer", "cloud"],
  all: ALL_SERVICES,
};

/** `SERVICES`: names and group names into service names, in a stable order. */
const services = custom<string[]>(
  "comma-separated service and group names",
  (raw) => {
    const names = new Set<string>();
    for (const part of raw
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)) {
      const g = SERVICE_GROUPS[part];
      if (g) g.forEach((s) => names.add(s));
      else if (ALL_SERVICES.includes(part)) names.add(part);
      else
        throw new InvalidValue(
          `names an unknown service "${part}" (known: ${ALL_SERVICES.join(", ")}, ${Object.keys(SERVICE_GROUPS).join(", ")})`,
        );
    }
    return ALL_SERVICES.filter((s) => names.has(s));
  },
  (v) => v.join(","),
);

// ---- value sets named once ----------------------------------------------------

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
/** Balancing strategies (lib/strategies/index.ts; a unit test keeps the two lists equal). */
export const BALANCER_MODES = ["auto", "round_robin", "least_busy", "latency", "random", "affinity"] as const;
/** `--outtype` values convert_hf_to_gguf.py accepts. */
export const CONVERT_OUTTYPES = ["f32", "f16", "bf16", "q8_0", "tq1_0", "tq2_0", "auto"] as const;

export type GpuSetting = "auto" | "cuda" | "vulkan" | "metal" | false;
const gpu = custom<GpuSetting>(
  "one of `auto`, `cuda`, `vulkan`, `metal`, `false`",
  (raw) => {
    const v = raw.trim().toLowerCase();
    if (v === "false" || v === "off" || v === "cpu") return false;
    if (v === "auto" || v === "cuda" || v === "vulkan" || v === "metal") return v;
    throw new InvalidValue("must be auto, cuda, vulkan, metal or false");
  },
  (v) => String(v),
);

/** A whole number ≥ 1, or `auto`: one per core. */
const processCount = custom<number | "auto">(
  "whole number ≥ 1, or `auto`",
  (raw) => {
    if (raw.trim().toLowerCase() === "auto") return "auto";
    return int({ min: 1 }).parse(raw);
  },
  (v) => String(v),
);

// ---- the variables, by concern ------------------------------------------------

const cluster = group(
  "cluster",
  "Cluster",
  "How a process joins the others. Every process of one cluster has the same `TRANSPORTER` and `NAMESPACE`.",
  {
    TRANSPORTER: v({
      // checked (and turned into Moleculer's option) by transporter() in moleculer.config.ts
      parse: custom("`nats://` URL", (raw) => raw.trim()),
      secret: true,
      shown: "(none: one process)",
      doc: "Moleculer transporter URL, e.g. `nats://user:pass@host:4222`. Unset = every service in one process.",
    }),
    NODEID: v({
      // it is part of NATS subjects: a space or a wildcard there would cut the node off the cluster without a word
      parse: custom("node ID (letters, digits, `-`, `_`, `.`)", (raw) => {
        const id = raw.trim();
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id))
          throw new InvalidValue("must be letters, digits, '-', '_' or '.' (it is part of NATS subjects)");
        return id;
      }),
      default: () => `${os.hostname()}-${process.pid}`,
      shown: "`<hostname>-<pid>`",
      doc: "Moleculer node ID; the registry lists inference nodes under it.",
    }),
    SERVICES: v({
      parse: services,
      default: ALL_SERVICES,
      doc:
        "Comma-separated services this process hosts. `inference` alone makes an inference node; " +
        "`router` is short for `api,registry,balancer,auth,apikeys,history,responses,cloud,models,aliases,audit`; " +
        "`gateway` (a router replica) for `api,registry,balancer,cloud`.",
    }),
    NAMESPACE: v({
      parse: str({ trim: true }),
      default: "llm-router",
      doc: "Moleculer namespace; brokers only see peers in the same one.",
    }),
    LOGLEVEL: v({
      parse: oneOf(LOG_LEVELS),
      default: "info",
      aliases: ["LLM_ROUTER_LOG_LEVEL"],
      doc: "Log level.",
    }),
    HEARTBEAT_INTERVAL: v({
      parse: seconds({ min: 1 }),
      default: 5,
      doc: "Seconds between Moleculer heartbeats.",
    }),
    HEARTBEAT_TIMEOUT: v({
      parse: seconds({ min: 2 }),
      default: 15,
      doc: "Seconds without a heartbeat before Moleculer drops a peer (a killed node leaves the table this fast).",
    }),
  },
);

const router = group("router", "Router", "The HTTP API and how it routes requests to the nodes.", {
  LLM_ROUTER_PROCESSES: v({
    parse: processCount,
    default: 1,
    doc:
      "Router processes sharing the HTTP port (Node's cluster module): the first hosts the services `SERVICES` names, " +
      "the others are `gateway` replicas. Without `TRANSPORTER` they talk over IPC; set it to the number of cores " +
      "the router may use. `auto` = one per core.",
  }),
  LLM_ROUTER_HOST: v({ parse: str({ trim: true }), default: "0.0.0.0", doc: "Bind address of the HTTP API." }),
  LLM_ROUTER_PORT: v({
    parse: int({ min: 0, max: 65535 }),
    default: 8080,
    doc: "HTTP port (`0` picks a free one; the chosen URL is logged).",
  }),
  LLM_ROUTER_OLLAMA_PORT: v({
    parse: int({ min: 0, max: 65535 }),
    doc:
      "Also serve Ollama's API (`/api/chat`, `/api/generate`, `/api/embed`, `/api/tags`, `/api/show`, `/api/ps`, " +
      "`/api/version`) on this port, conventionally 11434, for apps that speak only Ollama; API keys as on `/v1`. " +
      "Unset: off. `0` picks a free port (logged).",
  }),
  LLM_ROUTER_LOAD_BALANCER_MODE: v({
    parse: oneOf(BALANCER_MODES),
    default: "auto",
    doc:
      "Balancing strategy: `auto` (load score; a conversation stays on its node while that is nearly as good), `round_robin`, `least_busy`, `latency` (time to first token), " +
      "`random` (weighted by free slots) or `affinity` (a conversation stays on its node).",
  }),
  LLM_ROUTER_NODE_TIMEOUT: v({
    parse: seconds({ min: 1 }),
    default: 60,
    doc: "Seconds without an inference heartbeat before a node is marked offline.",
  }),
  LLM_ROUTER_REQUEST_TIMEOUT: v({
    parse: seconds({ min: 1 }),
    default: 600,
    doc: "Seconds a request to an inference node may take before it fails with 504.",
  }),
  LLM_ROUTER_MAX_BODY_SIZE: v({
    parse: byteSize(),
    default: "4mb",
    doc: "Largest accepted request body; larger ones get 413.",
  }),
  LLM_ROUTER_MAX_TOKENS_LIMIT: v({
    parse: int({ min: 1 }),
    default: 32768,
    doc: "Largest `max_tokens` a client may ask for; more gets 400.",
  }),
  LLM_ROUTER_MAX_RETRIES: v({
    parse: int({ min: 0 }),
    default: 2,
    doc: "Other nodes tried when one fails before the first byte reached the client (gone, timed out, loading, 5xx).",
  }),
  LLM_ROUTER_NODE_FAILURE_THRESHOLD: v({
    parse: int({ min: 1 }),
    default: 3,
    doc: "Failures in a row that bench a node (circuit breaker).",
  }),
  LLM_ROUTER_NODE_COOLDOWN_SECS: v({
    parse: seconds({ min: 0 }),
    default: 30,
    doc: "How long a benched node gets no requests before it is tried again.",
  }),
  LLM_ROUTER_STREAM_IDLE_TIMEOUT: v({
    parse: seconds({ min: 1 }),
    default: 60,
    doc: "Seconds a stream may go without a chunk before the router ends it with an error event and cancels it.",
  }),
  LLM_ROUTER_QUEUE_LIMIT: v({
    parse: int({ min: 0 }),
    default: 1024,
    doc: "Requests that may wait at the router while every node with their model is full or loading; past it, 503.",
  }),
  LLM_ROUTER_QUEUE_TIMEOUT_SECS: v({
    parse: seconds({ min: 1 }),
    default: 30,
    doc: "How long a request may wait in that queue before a 503 with `Retry-After`.",
  }),
  LLM_ROUTER_FALLBACK_AFTER_SECS: v({
    parse: seconds({ min: 0 }),
    default: 10,
    doc:
      "A request for a model with fallbacks (`/api/aliases`, `/api/fallbacks`) that no node could take within " +
      "this long goes to the next model of its chain (at once when no node is healthy or the queue is full).",
  }),
  LLM_ROUTER_HEALTH_CHECK_INTERVAL: v({
    parse: seconds({ min: 1 }),
    default: 30,
    doc: "Seconds between health checks (`GET /models`) of registered external runtimes.",
  }),
  LLM_ROUTER_TRUSTED_PROXIES: v({
    parse: list(),
    default: [],
    doc: "Comma-separated proxy addresses or CIDRs (`loopback`, `10.0.0.0/8`) whose `X-Forwarded-For` names the client IP.",
  }),
});

const health = group(
  "health",
  "Shutdown and health checks",
  "How a process stops, and how a container tells it is alive (the images set these).",
  {
    LLM_SHUTDOWN_TIMEOUT_SECS: v({
      parse: seconds({ min: 0 }),
      default: 30,
      doc:
        "On SIGTERM/SIGINT, seconds a process waits for what it serves to finish (a node: its generations; " +
        "a router: its open requests and streams) before it stops anyway. A second signal stops at once.",
    }),
    LLM_HEALTH_FILE: v({
      parse: filePath(),
      shown: "(none; `/tmp/llm-router.alive` in the images)",
      doc:
        "A running process rewrites this file every 5 s while its broker runs and is connected to the transporter; " +
        "`llm-router healthcheck` fails when it is older than 30 s (the only health signal of an inference node, " +
        "which serves no HTTP).",
    }),
  },
);

const auth = group(
  "auth",
  "Storage and accounts",
  "Where the router keeps its users, API keys, model catalog and history, and how people log in.",
  {
    LLM_ROUTER_DATA_DIR: v({
      parse: custom("path, or `:memory:`", (raw) => (raw === ":memory:" ? raw : filePath().parse(raw))),
      default: () => path.join(os.homedir(), ".llm-router"),
      shown: "`~/.llm-router`",
      doc: "Where the router keeps users, API keys and its JWT secret (NeDB files); `:memory:` keeps nothing.",
    }),
    LLM_ROUTER_DATABASE_URL: v({
      parse: custom("`postgres://` connection string", (raw) => {
        if (!/^postgres(ql)?:\/\/./i.test(raw.trim()))
          throw new InvalidValue("must be a postgres:// or postgresql:// connection string");
        return raw.trim();
      }),
      secret: true,
      shown: "(none: NeDB files)",
      doc:
        "Store users, API keys, node settings, runtimes, the model catalog, tasks, history and stored responses in " +
        "PostgreSQL (`postgres://user:pass@host:5432/llm_router`), for routers on several machines; its schema is " +
        "created and migrated at start.",
    }),
    MONGO_URI: v({
      // not parsed as a URL: a replica set's `mongodb://h1:27017,h2:27017/db` is not one
      parse: custom("`mongodb://` or `mongodb+srv://` connection string", (raw) => {
        if (!/^mongodb(\+srv)?:\/\/./i.test(raw.trim()))
          throw new InvalidValue("must be a mongodb:// or mongodb+srv:// connection string");
        return raw.trim();
      }),
      secret: true,
      shown: "(none: NeDB files)",
      doc:
        "Store data in MongoDB instead (`mongodb://user:pass@host:27017/llm-router`); not tested against a server here " +
        "(prefer LLM_ROUTER_DATABASE_URL).",
    }),
    LLM_ROUTER_ADMIN_USERNAME: v({
      parse: str({ trim: true }),
      default: "admin",
      doc: "The admin created on first start.",
    }),
    LLM_ROUTER_ADMIN_PASSWORD: v({
      parse: str(),
      secret: true,
      shown: "(generated, printed once)",
      doc: "Password of that first admin. Unset: a strong one is generated and printed once at first start.",
    }),
    LLM_ROUTER_JWT_SECRET: v({
      parse: str(),
      secret: true,
      shown: "(generated, kept in the data dir)",
      doc: "Signing key of login tokens (HS256). Unset: generated once and kept in `<data dir>/jwt-secret`, mode 0600.",
    }),
    LLM_ROUTER_JWT_EXPIRES_SECS: v({
      parse: int({ min: 1 }),
      default: 86400,
      doc: "Lifetime of a login token in seconds (24 h).",
    }),
    LLM_ROUTER_AUTH_DISABLED: v({
      parse: bool(),
      default: false,
      doc:
        "`true` turns API-key checks on `/v1`, `/api/chat`, `/api/generate` off, for trusted networks only " +
        "(logged loudly). Management routes still need a login.",
    }),
    LLM_ROUTER_CORS_ORIGINS: v({
      parse: list(),
      default: [],
      shown: "(none: CORS off)",
      doc: "Comma-separated origins allowed to call the API from a browser.",
    }),
  },
);

const history = group("history", "History", "The record of every inference request (the History page).", {
  LLM_ROUTER_HISTORY_ENABLED: v({
    parse: bool(),
    default: true,
    doc: "Record every inference request (request/response bodies, timings, tokens, nodes tried).",
  }),
  LLM_ROUTER_HISTORY_RETENTION_DAYS: v({
    parse: int({ min: 1 }),
    default: 7,
    doc: "Days request records are kept; older ones are purged at start and hourly.",
  }),
  LLM_ROUTER_HISTORY_MAX_RECORDS: v({
    parse: int({ min: 1 }),
    default: 20_000,
    doc:
      "Most records the embedded store keeps (oldest dropped first), so its memory and query times stay bounded " +
      "(it holds everything in memory and scans it per query: see bench/RESULTS.md). Not applied with MongoDB.",
  }),
  LLM_ROUTER_HISTORY_MAX_BODY_BYTES: v({
    parse: int({ min: 256 }),
    default: 65_536,
    doc: "Request and response bodies larger than this are stored cut, marked `truncated`.",
  }),
  LLM_ROUTER_HISTORY_STREAM: v({
    parse: oneOf(["auto", "off"]),
    default: "auto",
    doc:
      "`auto`: with a shared database (`LLM_ROUTER_DATABASE_URL` or `MONGO_URI`) and a NATS `TRANSPORTER` whose " +
      "server has JetStream, each finished request's record goes into a durable JetStream stream before the client " +
      "gets the answer's last bytes, and the routers' history services write it from there (a router killed after " +
      "answering, or the database down for a while, loses nothing). `off`, or no JetStream: each router writes its " +
      "own records (kept in memory while the database is away).",
  }),
  LLM_ROUTER_HISTORY_STREAM_MAX_MB: v({
    parse: int({ min: 1 }),
    default: 1024,
    doc: "Most megabytes of records the history stream holds while the database is behind (oldest dropped first).",
  }),
});

const metrics = group("metrics", "Metrics", "Who may read the Prometheus metrics, and where.", {
  LLM_ROUTER_METRICS_TOKEN: v({
    parse: str({ trim: true }),
    secret: true,
    doc: "Bearer token that may read `/metrics` and `/metrics/cloud` on the API port (a login token works too).",
  }),
  LLM_ROUTER_METRICS_PORT: v({
    parse: int({ min: 0, max: 65535 }),
    doc:
      "Also serve Moleculer's Prometheus `/metrics` (ours included), open, on this port — for a network only " +
      "Prometheus reaches. Not with `LLM_ROUTER_PROCESSES` > 1 (scrape `/metrics` on the API port).",
  }),
});

const clouds = group(
  "clouds",
  "Cloud providers",
  "A provider is on when its key is set (on the router); its models are then called `<provider>:<model>`. " +
    "Keys are sent to their provider only, never logged or recorded.",
  {
    OPENAI_API_KEY: v({ parse: str({ trim: true }), secret: true, doc: "Enables `openai:<model>`." }),
    OPENAI_BASE_URL: v({
      parse: url(),
      default: "https://api.openai.com",
      doc: "OpenAI API base URL (no `/v1`).",
    }),
    OPENAI_MODELS: v({
      parse: list(),
      default: ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o4-mini"],
      doc: "Comma-separated `openai:` models `/v1/models` lists.",
    }),
    GOOGLE_API_KEY: v({ parse: str({ trim: true }), secret: true, doc: "Enables `google:<model>` (Gemini API)." }),
    GOOGLE_API_BASE_URL: v({
      parse: url(),
      default: "https://generativelanguage.googleapis.com/v1beta",
      doc: "Gemini API base URL.",
    }),
    GOOGLE_MODELS: v({
      parse: list(),
      default: ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"],
      doc: "Comma-separated `google:` models `/v1/models` lists.",
    }),
    ANTHROPIC_API_KEY: v({
      parse: str({ trim: true }),
      secret: true,
      doc: "Enables `anthropic:<model>` (and the seed's alias `ahtnorpic:<model>`).",
    }),
    ANTHROPIC_API_BASE_URL: v({ parse: url(), default: "https://api.anthropic.com", doc: "Anthropic API base URL." }),
    ANTHROPIC_MODELS: v({
      parse: list(),
      default: ["claude-sonnet-4-5", "claude-opus-4-1", "claude-3-5-haiku-latest"],
      doc: "Comma-separated `anthropic:` models `/v1/models` lists.",
    }),
  },
);

const models = group(
  "models",
  "Model catalog and conversion",
  "Where models are registered from and downloaded, and how the router turns weights without a GGUF into one.",
  {
    HF_BASE_URL: v({
      parse: url(),
      default: "https://huggingface.co",
      doc: "Hugging Face Hub (or a mirror) for model registration, search and downloads; router and nodes.",
    }),
    HF_TOKEN: v({
      parse: str({ trim: true }),
      secret: true,
      doc: "Hub token for gated or private repos. The router uses it for the hub API, each node its own for downloads.",
    }),
    LLM_ROUTER_CONVERT_SCRIPT: v({
      parse: filePath(),
      shown: "(none: no conversion)",
      doc:
        "Path to llama.cpp's `convert_hf_to_gguf.py` (with its `requirements.txt` installed). Set, a repo with " +
        "safetensors or PyTorch weights but no GGUF is converted on the router into `<data dir>/converted/`.",
    }),
    LLM_ROUTER_CONVERT_OUTTYPE: v({
      parse: oneOf(CONVERT_OUTTYPES),
      default: "q8_0",
      doc: "`--outtype` of conversions; a registration may name another.",
    }),
    LLM_ROUTER_CONVERT_PYTHON: v({
      parse: str({ trim: true }),
      default: "python3",
      doc: "The Python that runs the conversion script (e.g. a virtualenv's `bin/python`).",
    }),
  },
);

const node = group(
  "node",
  "Inference node",
  "A process whose `SERVICES` include `inference` (`llm-router start --node`): its models and how it runs them.",
  {
    LLM_NODE_MODELS_DIR: v({
      parse: filePath(),
      default: () => path.join(os.homedir(), ".runtime/models"),
      shown: "`~/.runtime/models`",
      doc: "Directory scanned for `.gguf` files; the model id is the path under it without `.gguf`.",
    }),
    LLM_NODE_NAME: v({
      parse: str({ trim: true }),
      default: () => os.hostname(),
      shown: "hostname",
      doc: "Machine name shown for this node.",
    }),
    LLM_NODE_PARALLEL: v({
      parse: int({ min: 1 }),
      default: 4,
      doc: "Requests served at once per model (parallel context sequences); the rest wait in a per-model queue.",
    }),
    LLM_NODE_STREAM_BATCH_MS: v({
      parse: int({ min: 0, max: 100 }),
      default: 5,
      doc:
        "A stream's first chunk leaves at once; the chunks after it are gathered for up to this many milliseconds " +
        "and cross the transporter together: over a router's token lane, the chunks of all its streams in one " +
        "message a window; `0`: no lanes, one message a chunk.",
    }),
    LLM_NODE_STREAM_BATCH_CHUNKS: v({
      parse: int({ min: 1, max: 1024 }),
      default: 16,
      doc: "A stream's gathered chunks leave at once when they are this many (streams without a token lane).",
    }),
    LLM_NODE_THREADS: v({
      parse: int({ min: 1 }),
      default: () => Math.max(1, Math.floor(os.cpus().length / 2)),
      shown: "half the cores (at least 1)",
      doc: "CPU threads per context. On 2-core machines more than 1 collapses speed.",
    }),
    LLM_NODE_CONTEXT_SIZE: v({
      parse: int({ min: 64 }),
      default: 4096,
      doc: "Context size in tokens for each parallel sequence.",
    }),
    LLM_NODE_GPU: v({
      parse: gpu,
      default: "auto",
      doc: "llama.cpp backend: `auto`, `cuda`, `vulkan`, `metal` or `false` (CPU only; `off` and `cpu` too).",
    }),
    LLM_NODE_HEARTBEAT_SECS: v({
      parse: seconds({ min: 1 }),
      default: 10,
      doc: "Seconds between node heartbeats (also sent at once on any change).",
    }),
    LLM_NODE_ENGINE: v({
      parse: oneOf(["llama", "instant"]),
      default: "llama",
      doc:
        "`llama` (node-llama-cpp) or `instant`: a simulated engine that answers at once without loading the files, " +
        "for benchmarks.",
    }),
    LLM_NODE_INSTANT_MS_PER_TOKEN: v({
      parse: num({ unit: "milliseconds", min: 0 }),
      default: 0,
      doc:
        "With `LLM_NODE_ENGINE=instant`: simulated milliseconds per token, holding one of `LLM_NODE_PARALLEL` " +
        "slots (benchmarks).",
    }),
    LLM_NODE_MAX_LOADED_MODELS: v({
      parse: int({ min: 1 }),
      shown: "(no limit)",
      doc:
        "Most models loaded at once. Loading another unloads the least recently used idle one first; " +
        "models on disk and not loaded are still offered and loaded on demand.",
    }),
    LLM_NODE_MEMORY_BUDGET: v({
      parse: memorySize(),
      shown: "free memory at start less 10 %",
      doc:
        "Most memory the loaded models may hold (`24gb`, `512mb`, bytes), by node-llama-cpp's estimate of each " +
        "model with its contexts: VRAM on a GPU, RAM otherwise. Past it the least recently used idle model is unloaded.",
    }),
    LLM_NODE_MODEL_IDLE_SECS: v({
      parse: seconds({ min: 1 }),
      shown: "(never)",
      doc: "Unload a model no request has used for this long (pinned models stay).",
    }),
    LLM_NODE_PINNED_MODELS: v({
      parse: list(),
      default: [],
      shown: "(none)",
      doc: "Comma-separated model ids loaded at start and never unloaded.",
    }),
    LLM_NODE_LOAD_AT_START: v({
      parse: oneOf(["fit", "pinned"] as const),
      default: "fit",
      doc:
        "What a node loads at start: `fit` loads the pinned models, then the others in name order while they fit " +
        "without unloading anything; `pinned` only the pinned ones (the rest load on their first request).",
    }),
    LLM_NODE_DEMO_MODEL: v({
      parse: bool(),
      default: true,
      doc: "Write a random-weight demo model into an empty models dir at start (`false` to start with none).",
    }),
  },
);

const telemetry = group(
  "telemetry",
  "Tracing",
  "OpenTelemetry's standard variables: with an OTLP endpoint, every process exports one trace per request " +
    "over OTLP/HTTP (docs/history-and-metrics.md#tracing); without one, tracing is off and costs nothing.",
  {
    OTEL_EXPORTER_OTLP_ENDPOINT: v({
      parse: url(),
      doc: "The OTLP/HTTP collector (`http://collector:4318`): spans go to its `/v1/traces`. Unset: no tracing.",
    }),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: v({
      parse: url(),
      doc: "The full URL for spans, when not `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`.",
    }),
    OTEL_SERVICE_NAME: v({
      parse: str({ trim: true }),
      default: "llm-router",
      doc: "`service.name` of every span (each process is told apart by `service.instance.id`, its node ID).",
    }),
    OTEL_SDK_DISABLED: v({ parse: bool(), default: false, doc: "`true`: no tracing, whatever the endpoint." }),
    OTEL_TRACES_EXPORTER: v({
      parse: oneOf(["otlp", "none"]),
      default: "otlp",
      doc: "`none`: no tracing, whatever the endpoint (the only exporter is OTLP over HTTP).",
    }),
  },
);

const cli = group("cli", "Command line", "The `model` and `nodes` commands, which talk to a running router's API.", {
  LLM_ROUTER_URL: v({
    parse: url(),
    default: "http://localhost:8080",
    doc: "The router the `model` and `nodes` commands talk to.",
  }),
  LLM_ROUTER_TOKEN: v({
    parse: str({ trim: true }),
    secret: true,
    doc: "A login token for the `model` and `nodes` commands (else they log in with the next two).",
  }),
  LLM_ROUTER_USER: v({
    parse: str({ trim: true }),
    default: "admin",
    doc: "User the `model` and `nodes` commands log in as.",
  }),
  LLM_ROUTER_PASSWORD: v({ parse: str(), secret: true, doc: "Its password." }),
});

/** The groups, in the order of the docs. */
export const GROUPS: ConfigGroup[] = [
  cluster,
  router,
  health,
  auth,
  history,
  metrics,
  telemetry,
  clouds,
  models,
  node,
  cli,
].map((g) => ({ ...g, vars: Object.values(g.vars) as EnvVar[] }));

/** Every variable by name, typed: `read(ENV.LLM_ROUTER_PORT)` is a number. */
export const ENV = {
  ...cluster.vars,
  ...router.vars,
  ...health.vars,
  ...auth.vars,
  ...history.vars,
  ...metrics.vars,
  ...telemetry.vars,
  ...clouds.vars,
  ...models.vars,
  ...node.vars,
  ...cli.vars,
};

/** Every variable, in the order of the docs. */
export const ENV_VARS: EnvVar[] = GROUPS.flatMap((g) => g.vars);
