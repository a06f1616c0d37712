/**
 * `llm-router` command line:
 *   start [--node]       start the services SERVICES names (default: all, one process)
 *   make-model [opts]    write a tiny random-weight GGUF model
 *   user add|list|delete  manage users in the data store (recovery)
 *   key create|list|revoke manage API keys in the data store (recovery)
 *   model add|download|list|status|load|unload|rm  the model catalog and what the nodes have loaded, through a running router's API
 *   alias add|list|rm, fallback set|list|rm  model aliases and fallback chains, through a running router's API
 *   audit list|verify    the audit log of admin actions, through a running router's API
 *   nodes                the node table, through a running router's API
 *   repl                 the ops console: joins the cluster (TRANSPORTER) with Moleculer's REPL
 *   healthcheck          exit 0 if this container's process is healthy (bin/healthcheck.ts, used by the images)
 *   env [--values]       the environment variables: their reference (docs/configuration.md), or the values used here
 */
import { buildTinyReranker } from "../lib/gguf/tiny-reranker";
import { startTracing, stopTracing } from "../lib/telemetry/tracing";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { brokerConfig, metricsOptions } from "../moleculer.config";
import {
  checkEnv,
  configMarkdown,
  envValues,
  healthFile,
  isSet,
  ENV,
  nodeConfig,
  routerProcesses,
  selectedServices,
  shutdownTimeoutSecs,
} from "../lib/config";
import { asRouterProcess, followPrimary, startRouterProcesses } from "./processes";
import { startLiveness } from "../lib/cluster/liveness";
import { healthcheck } from "./healthcheck";
import { stopGracefully } from "./shutdown";
import { buildTinyLlama, tinyModelOptions, TINY_MODEL_PRESETS, type TinyModelPreset } from "../lib/gguf/tiny-llama";
import ApiService from "../services/api.service";
import BalancerService from "../services/balancer.service";
import InferenceService from "../services/inference.service";
import RegistryService from "../services/registry.service";
import AuthService from "../services/auth.service";
import ApiKeysService from "../services/apikeys.service";
import HistoryService from "../services/history.service";
import ResponsesService from "../services/responses.service";
import CloudService from "../services/cloud.service";
import ModelsService from "../services/models.service";
import AliasesService from "../services/aliases.service";
import AuditService from "../services/audit.service";
import UsageService from "../services/usage.service";
import { keyCommand, userCommand } from "./accounts-cli";
import { modelCommand, nodesCommand } from "./models-cli";
import { aliasCommand, fallbackCommand } from "./aliases-cli";
import { auditCommand } from "./audit-cli";
import { replCommand } from "./repl";
import { unmetPartners } from "../lib/core/router-core";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each schema has its own settings/methods types
const SCHEMAS: Record<string, ServiceSchema<any, any, any>> = {
  api: ApiService,
  registry: RegistryService,
  balancer: BalancerService,
  auth: AuthService,
  apikeys: ApiKeysService,
  history: HistoryService,
  responses: ResponsesService,
  cloud: CloudService,
  models: ModelsService,
  aliases: AliasesService,
  audit: AuditService,
  usage: UsageService,
  inference: InferenceService,
};

async function start(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { node: { type: "boolean", default: false }, worker: { type: "string" } },
  });
  // a bad value stops the process now, naming the variable, even one read only later
  checkEnv();
  // --node: an inference node, unless SERVICES says otherwise
  const services = values.node && !isSet(ENV.SERVICES) ? selectedServices("inference") : selectedServices();
  const unmet = unmetPartners(services);
  if (unmet) throw new Error(`SERVICES=${services.join(",")}: ${unmet} (or use the groups router, gateway).`);
  // one of several router processes (bin/processes.ts), started by their primary
  const worker = values.worker === undefined ? null : Number(values.worker);
  const processes = worker === null && services.includes("api") ? routerProcesses() : 1;
  if (processes > 1) return startRouterProcesses(processes, services);
  const options = brokerConfig();
  const how =
    worker !== null
      ? `router process ${worker}, ${options.transporter ? "over the transporter" : "over IPC"}`
      : options.transporter
        ? "clustered over the transporter"
        : "embedded: one process, no transporter";
  if (values.node && !options.transporter) {
    throw new Error("An inference node joins a cluster: set TRANSPORTER=nats://host:4222 (the router's NATS).");
  }
  if (worker !== null) asRouterProcess(options, worker);
  options.metrics = metricsOptions(services.includes("api"), worker === null);
  // our own signal handling: drain first, then stop (bin/shutdown.ts)
  options.skipProcessEventRegistration = true;
  // OpenTelemetry, when an OTLP endpoint is set (lib/telemetry/tracing.ts): what is left is sent once the broker stopped
  options.stopped = () => stopTracing();
  const broker = new ServiceBroker(options);
  startTracing(broker.nodeID);
  // a router process leaves SIGINT to its primary (followPrimary)
  const stop = stopGracefully(broker, shutdownTimeoutSecs(), worker === null ? ["SIGTERM", "SIGINT"] : ["SIGTERM"]);
  const ready = worker === null ? undefined : followPrimary(broker, stop);
  for (const name of services) broker.createService(serviceSchema(name, services));
  broker.logger.info(`Starting ${services.join(", ")} as node '${broker.nodeID}' (${how})`);
  try {
    await broker.start();
  } catch (err) {
    // stopped while starting: a service cut short may fail its start; the stop exits 0 once done
    if (stop.stopping) return;
    throw err;
  }
  // stopped while starting: not ready, and no beat file for a broker that is stopping
  if (stop.stopping) return;
  ready?.();
  // for container health checks: a beat file kept fresh while the broker runs and is connected
  const beatFile = healthFile();
  if (beatFile) startLiveness(broker, beatFile, services);
}

/**
 * A service's schema. An api without the key and account services beside it
 * (a gateway) waits for them before it opens its port, so it never answers
 * a request it cannot check.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each schema has its own settings/methods types
function serviceSchema(name: string, services: string[]): ServiceSchema<any, any, any> {
  const schema = SCHEMAS[name];
  if (name !== "api") return schema;
  const remote = ["apikeys", "auth"].filter((s) => !services.includes(s));
  return remote.length ? { ...schema, dependencies: remote } : schema;
}

function makeModel(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: "string", default: "tiny" },
      seed: { type: "string", default: "42" },
      out: { type: "string" },
      context: { type: "string", default: "2048" },
      f16: { type: "boolean" },
      f32: { type: "boolean" },
      reranker: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: llm-router make-model [--size tiny|small|medium] [--seed N] [--context N] [--f16|--f32] [--reranker] [--out FILE]\n" +
        "Writes a llama-architecture GGUF with seeded random weights (output is noise) and a ChatML template;\n" +
        "--reranker: a qwen3-architecture one with a ranking head, for POST /v1/rerank (scores are noise too).\n" +
        "Default FILE: $LLM_NODE_MODELS_DIR/tiny-llama-<size>.gguf",
    );
    return;
  }
  const size = values.size as TinyModelPreset;
  if (!(size in TINY_MODEL_PRESETS))
    throw new Error(`--size must be one of ${Object.keys(TINY_MODEL_PRESETS).join(", ")}`);
  const seed = Number(values.seed);
  const contextLength = Number(values.context);
  if (!Number.isInteger(seed) || seed < 0) throw new Error("--seed must be a non-negative integer");
  if (!Number.isInteger(contextLength) || contextLength < 64) throw new Error("--context must be an integer >= 64");
  const overrides: Parameters<typeof tinyModelOptions>[1] = { seed, contextLength };
  if (values.f16) overrides.f16 = true;
  if (values.f32) overrides.f16 = false;
  const opts = values.reranker
    ? { ...tinyModelOptions(size, overrides), name: `tiny-reranker-${size}`, printable: false }
    : tinyModelOptions(size, overrides);
  const out = values.out ?? path.join(nodeConfig().modelsDir, `${opts.name}.gguf`);
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const bytes = values.reranker ? buildTinyReranker(opts) : buildTinyLlama(opts);
  fs.writeFileSync(out, bytes);
  console.log(
    `wrote ${out} (${(bytes.length / 1024).toFixed(0)} KiB, ${size}, seed ${seed}): random weights, output is noise`,
  );
}

/** `env [--markdown]`: docs/configuration.md (`npm run docs:config`); `env --values`: what this process would use. */
function envCommand(args: string[]): void {
  const { values } = parseArgs({ args, options: { markdown: { type: "boolean" }, values: { type: "boolean" } } });
  if (!values.values) {
    process.stdout.write(configMarkdown());
    return;
  }
  for (const v of envValues()) {
    const from = v.from === "default" ? " (default)" : v.from !== v.name ? ` (from ${v.from})` : "";
    console.log(`${v.name}=${v.value}${from}`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command = "start", ...rest] = argv;
  switch (command) {
    case "start":
      return start(rest);
    case "make-model":
      return makeModel(rest);
    case "user":
      return userCommand(rest);
    case "key":
      return keyCommand(rest);
    case "model":
      return modelCommand(rest);
    case "alias":
      return aliasCommand(rest);
    case "fallback":
      return fallbackCommand(rest);
    case "audit":
      return auditCommand(rest);
    case "nodes":
      return nodesCommand();
    case "repl":
      return replCommand();
    case "healthcheck":
      return process.exit(await healthcheck(rest));
    case "env":
      return envCommand(rest);
    default:
      throw new Error(
        `unknown command "${command}" (commands: start, make-model, model, alias, fallback, audit, nodes, repl, healthcheck, user, key, env)`,
      );
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`llm-router: ${err.message}`);
  process.exit(1);
});
