/**
 * Every environment variable the project reads, in one table (the README's
 * table is generated from it and checked against it by a unit test).
 */
export interface EnvVar {
  name: string;
  default: string;
  description: string;
}

export const ENV_VARS: EnvVar[] = [
  // cluster
  {
    name: "TRANSPORTER",
    default: "(none: one process)",
    description: "Moleculer transporter URL, e.g. `nats://user:pass@host:4222`. Unset = every service in one process.",
  },
  {
    name: "NODEID",
    default: "`<hostname>-<pid>`",
    description: "Moleculer node ID; the registry lists inference nodes under it.",
  },
  {
    name: "SERVICES",
    default: "`api,registry,balancer,auth,apikeys,history,cloud,models,inference`",
    description:
      "Comma-separated services this process hosts. `inference` alone makes an inference node; `router` is short for `api,registry,balancer,auth,apikeys,history,cloud,models`; `gateway` (a router replica) for `api,registry,balancer,cloud`.",
  },
  {
    name: "NAMESPACE",
    default: "`llm-router`",
    description: "Moleculer namespace; brokers only see peers in the same one.",
  },
  {
    name: "LOGLEVEL",
    default: "`info`",
    description: "Log level (`fatal`, `error`, `warn`, `info`, `debug`, `trace`). `LLM_ROUTER_LOG_LEVEL` is read too.",
  },
  { name: "HEARTBEAT_INTERVAL", default: "`5`", description: "Seconds between Moleculer heartbeats." },
  {
    name: "HEARTBEAT_TIMEOUT",
    default: "`15`",
    description:
      "Seconds without a heartbeat before Moleculer drops a peer (a killed node leaves the table this fast).",
  },
  // router
  {
    name: "LLM_ROUTER_PROCESSES",
    default: "`1`",
    description:
      "Router processes sharing the HTTP port (Node's cluster module): the first hosts the services `SERVICES` names, the others are `gateway` replicas. Without `TRANSPORTER` they talk over IPC; set it to the number of cores the router may use. `auto` = one per core.",
  },
  { name: "LLM_ROUTER_HOST", default: "`0.0.0.0`", description: "Bind address of the HTTP API." },
  {
    name: "LLM_ROUTER_PORT",
    default: "`8080`",
    description: "HTTP port (`0` picks a free one; the chosen URL is logged).",
  },
  {
    name: "LLM_ROUTER_LOAD_BALANCER_MODE",
    default: "`auto`",
    description:
      "Balancing strategy: `auto` (load score), `round_robin`, `least_busy`, `latency` (time to first token), `random` (weighted by free slots) or `affinity` (a conversation stays on its node).",
  },
  {
    name: "LLM_ROUTER_NODE_TIMEOUT",
    default: "`60`",
    description: "Seconds without an inference heartbeat before a node is marked offline.",
  },
  {
    name: "LLM_SHUTDOWN_TIMEOUT_SECS",
    default: "`30`",
    description:
      "On SIGTERM/SIGINT, seconds a process waits for what it serves to finish (a node: its generations; a router: its open requests and streams) before it stops anyway. A second signal stops at once.",
  },
  {
    name: "LLM_HEALTH_FILE",
    default: "(none; `/tmp/llm-router.alive` in the images)",
    description:
      "A running process rewrites this file every 5 s while its broker runs and is connected to the transporter; `llm-router healthcheck` fails when it is older than 30 s (the only health signal of an inference node, which serves no HTTP).",
  },
  {
    name: "LLM_ROUTER_REQUEST_TIMEOUT",
    default: "`600`",
    description: "Seconds a request to an inference node may take before it fails with 504.",
  },
  {
    name: "LLM_ROUTER_MAX_BODY_SIZE",
    default: "`4mb`",
    description: "Largest accepted request body; larger ones get 413.",
  },
  {
    name: "LLM_ROUTER_MAX_TOKENS_LIMIT",
    default: "`32768`",
    description: "Largest `max_tokens` a client may ask for; more gets 400.",
  },
  {
    name: "LLM_ROUTER_MAX_RETRIES",
    default: "`2`",
    description:
      "Other nodes tried when one fails before the first byte reached the client (gone, timed out, loading, 5xx).",
  },
  {
    name: "LLM_ROUTER_NODE_FAILURE_THRESHOLD",
    default: "`3`",
    description: "Failures in a row that bench a node (circuit breaker).",
  },
  {
    name: "LLM_ROUTER_NODE_COOLDOWN_SECS",
    default: "`30`",
    description: "How long a benched node gets no requests before it is tried again.",
  },
  {
    name: "LLM_ROUTER_STREAM_IDLE_TIMEOUT",
    default: "`60`",
    description:
      "Seconds a stream may go without a chunk before the router ends it with an error event and cancels it.",
  },
  {
    name: "LLM_ROUTER_QUEUE_LIMIT",
    default: "`1024`",
    description:
      "Requests that may wait at the router while every node with their model is full or loading; past it, 503.",
  },
  {
    name: "LLM_ROUTER_QUEUE_TIMEOUT_SECS",
    default: "`30`",
    description: "How long a request may wait in that queue before a 503 with `Retry-After`.",
  },
  {
    name: "LLM_ROUTER_HEALTH_CHECK_INTERVAL",
    default: "`30`",
    description: "Seconds between health checks (`GET /models`) of registered external runtimes.",
  },
  // storage and accounts
  {
    name: "LLM_ROUTER_DATA_DIR",
    default: "`~/.llm-router`",
    description: "Where the router keeps users, API keys and its JWT secret (NeDB files); `:memory:` keeps nothing.",
  },
  {
    name: "MONGO_URI",
    default: "(none: NeDB files)",
    description:
      "Store data in MongoDB instead (`mongodb://user:pass@host:27017/llm-router`); needed for several router replicas.",
  },
  { name: "LLM_ROUTER_ADMIN_USERNAME", default: "`admin`", description: "The admin created on first start." },
  {
    name: "LLM_ROUTER_ADMIN_PASSWORD",
    default: "(generated, printed once)",
    description: "Password of that first admin. Unset: a strong one is generated and printed once at first start.",
  },
  {
    name: "LLM_ROUTER_JWT_SECRET",
    default: "(generated, kept in the data dir)",
    description:
      "Signing key of login tokens (HS256). Unset: generated once and kept in `<data dir>/jwt-secret`, mode 0600.",
  },
  { name: "LLM_ROUTER_JWT_EXPIRES_SECS", default: "`86400`", description: "Lifetime of a login token (24 h)." },
  {
    name: "LLM_ROUTER_AUTH_DISABLED",
    default: "`false`",
    description:
      "`true` turns API-key checks on `/v1`, `/api/chat`, `/api/generate` off, for trusted networks only (logged loudly). Management routes still need a login.",
  },
  {
    name: "LLM_ROUTER_CORS_ORIGINS",
    default: "(none: CORS off)",
    description: "Comma-separated origins allowed to call the API from a browser.",
  },
  // history and metrics
  {
    name: "LLM_ROUTER_HISTORY_ENABLED",
    default: "`true`",
    description: "Record every inference request (request/response bodies, timings, tokens, nodes tried).",
  },
  {
    name: "LLM_ROUTER_HISTORY_RETENTION_DAYS",
    default: "`7`",
    description: "Days request records are kept; older ones are purged at start and hourly.",
  },
  {
    name: "LLM_ROUTER_HISTORY_MAX_RECORDS",
    default: "`20000`",
    description:
      "Most records the embedded store keeps (oldest dropped first), so its memory and query times stay bounded (it holds everything in memory and scans it per query: see bench/RESULTS.md). Not applied with MongoDB.",
  },
  {
    name: "LLM_ROUTER_HISTORY_MAX_BODY_BYTES",
    default: "`65536`",
    description: "Request and response bodies larger than this are stored cut, marked `truncated`.",
  },
  {
    name: "LLM_ROUTER_TRUSTED_PROXIES",
    default: "(none)",
    description:
      "Comma-separated proxy addresses or CIDRs (`loopback`, `10.0.0.0/8`) whose `X-Forwarded-For` names the client IP.",
  },
  {
    name: "LLM_ROUTER_METRICS_TOKEN",
    default: "(none)",
    description:
      "Bearer token that may read `/metrics` and `/metrics/cloud` on the API port (a login token works too).",
  },
  {
    name: "LLM_ROUTER_METRICS_PORT",
    default: "(none)",
    description:
      "Also serve Moleculer's Prometheus `/metrics` (ours included), open, on this port — for a network only Prometheus reaches. Not with `LLM_ROUTER_PROCESSES` > 1 (scrape `/metrics` on the API port).",
  },
  // cloud providers
  {
    name: "OPENAI_API_KEY",
    default: "(none)",
    description: "Enables `openai:<model>`; sent to OpenAI only, never logged or recorded.",
  },
  { name: "OPENAI_BASE_URL", default: "`https://api.openai.com`", description: "OpenAI API base URL (no `/v1`)." },
  {
    name: "OPENAI_MODELS",
    default: "a built-in list",
    description: "Comma-separated `openai:` models `/v1/models` lists.",
  },
  { name: "GOOGLE_API_KEY", default: "(none)", description: "Enables `google:<model>` (Gemini API)." },
  {
    name: "GOOGLE_API_BASE_URL",
    default: "`https://generativelanguage.googleapis.com/v1beta`",
    description: "Gemini API base URL.",
  },
  {
    name: "GOOGLE_MODELS",
    default: "a built-in list",
    description: "Comma-separated `google:` models `/v1/models` lists.",
  },
  {
    name: "ANTHROPIC_API_KEY",
    default: "(none)",
    description: "Enables `anthropic:<model>` (and the seed's alias `ahtnorpic:<model>`).",
  },
  { name: "ANTHROPIC_API_BASE_URL", default: "`https://api.anthropic.com`", description: "Anthropic API base URL." },
  {
    name: "ANTHROPIC_MODELS",
    default: "a built-in list",
    description: "Comma-separated `anthropic:` models `/v1/models` lists.",
  },
  // models
  {
    name: "HF_BASE_URL",
    default: "`https://huggingface.co`",
    description: "Hugging Face Hub (or a mirror) for model registration, search and downloads; router and nodes.",
  },
  {
    name: "HF_TOKEN",
    default: "(none)",
    description:
      "Hub token for gated or private repos. The router uses it for the hub API, each node its own for downloads.",
  },
  {
    name: "LLM_ROUTER_CONVERT_SCRIPT",
    default: "(none: no conversion)",
    description:
      "Path to llama.cpp's `convert_hf_to_gguf.py` (with its `requirements.txt` installed). Set, a repo with safetensors or PyTorch weights but no GGUF is converted on the router into `<data dir>/converted/`.",
  },
  {
    name: "LLM_ROUTER_CONVERT_OUTTYPE",
    default: "`q8_0`",
    description:
      "`--outtype` of conversions (`f32`, `f16`, `bf16`, `q8_0`, `tq1_0`, `tq2_0`, `auto`); a registration may name another.",
  },
  {
    name: "LLM_ROUTER_CONVERT_PYTHON",
    default: "`python3`",
    description: "The Python that runs the conversion script (e.g. a virtualenv's `bin/python`).",
  },
  // command line
  {
    name: "LLM_ROUTER_URL",
    default: "`http://localhost:8080`",
    description: "The router the `model` and `nodes` commands talk to.",
  },
  {
    name: "LLM_ROUTER_TOKEN",
    default: "(none)",
    description: "A login token for the `model` and `nodes` commands (else they log in with the next two).",
  },
  { name: "LLM_ROUTER_USER", default: "`admin`", description: "User the `model` and `nodes` commands log in as." },
  { name: "LLM_ROUTER_PASSWORD", default: "(none)", description: "Its password." },
  // inference node
  {
    name: "LLM_NODE_MODELS_DIR",
    default: "`~/.runtime/models`",
    description: "Directory scanned for `.gguf` files; the model id is the path under it without `.gguf`.",
  },
  { name: "LLM_NODE_NAME", default: "hostname", description: "Machine name shown for this node." },
  {
    name: "LLM_NODE_PARALLEL",
    default: "`4`",
    description: "Requests served at once per model (parallel context sequences); the rest wait in a per-model queue.",
  },
  {
    name: "LLM_NODE_THREADS",
    default: "half the cores (at least 1)",
    description: "CPU threads per context. On 2-core machines more than 1 collapses speed.",
  },
  {
    name: "LLM_NODE_CONTEXT_SIZE",
    default: "`4096`",
    description: "Context size in tokens for each parallel sequence.",
  },
  {
    name: "LLM_NODE_GPU",
    default: "`auto`",
    description: "llama.cpp backend: `auto`, `cuda`, `vulkan`, `metal` or `false` (CPU only).",
  },
  {
    name: "LLM_NODE_HEARTBEAT_SECS",
    default: "`10`",
    description: "Seconds between node heartbeats (also sent at once on any change).",
  },
  {
    name: "LLM_NODE_ENGINE",
    default: "`llama`",
    description:
      "`llama` (node-llama-cpp) or `instant`: a simulated engine that answers at once without loading the files, for benchmarks.",
  },
  {
    name: "LLM_NODE_INSTANT_MS_PER_TOKEN",
    default: "`0`",
    description:
      "With `LLM_NODE_ENGINE=instant`: simulated milliseconds per token, holding one of `LLM_NODE_PARALLEL` slots (benchmarks).",
  },
  {
    name: "LLM_NODE_DEMO_MODEL",
    default: "`true`",
    description: "Write a random-weight demo model into an empty models dir at start (`false` to start with none).",
  },
];
