/**
 * `llm-router repl` (`npm run repl`): the ops console. Joins the cluster over
 * TRANSPORTER as a broker with no services of its own and starts Moleculer's
 * REPL with our commands (nodes, route, drain, undrain, history tail, models, load, unload);
 * the text comes from lib/repl/format.ts. It calls the router's services
 * directly over the transporter: being a cluster member is its credential,
 * so whoever can join the NATS cluster is trusted (see the README).
 */
import { audited } from "../lib/audit/console";
import { createRequire } from "node:module";
import type { BrokerOptions, LogLevels, ReplOptions } from "moleculer";
import { ServiceBroker } from "moleculer";
import { brokerConfig } from "../moleculer.config";
import { clusterConfig, ENV, isSet } from "../lib/config";
import type { RouteExplanation } from "../lib/routing/explain";
import {
  formatHistory,
  formatModels,
  formatNodes,
  formatRoute,
  type CatalogRow,
  type HistoryRow,
  type NodeRow,
  type ServedModel,
} from "../lib/repl/format";
import { maskUrl, redact } from "../lib/repl/redact";

/** What moleculer-repl passes a command's action (its typings say `string[]`). */
interface ReplArgs {
  options: Record<string, unknown>;
  [arg: string]: unknown;
}

type ReplCustomCommand = NonNullable<ReplOptions["customCommands"]>[number];

type Action = (broker: ServiceBroker, args: ReplArgs) => Promise<string>;

function command(name: string, description: string, action: Action, extra: Partial<ReplCustomCommand> = {}) {
  const def: ReplCustomCommand = {
    command: name,
    description,
    ...extra,
    async action(broker, args) {
      try {
        console.log(await action(broker, args as unknown as ReplArgs));
      } catch (err) {
        console.log(`error: ${(err as Error).message}`);
      }
    },
  };
  return def;
}

const COMMANDS: ReplCustomCommand[] = [
  command("nodes", "The node table with live metrics (registry.list)", async (broker) =>
    formatNodes(await broker.call<NodeRow[], object>("registry.list", {})),
  ),
  command(
    "route <model>",
    "Which node the balancer would pick for <model> now, and why (balancer.explain)",
    async (broker, args) => {
      const router = args.options.router as string | undefined;
      const ex = await broker.call<RouteExplanation, object>(
        "balancer.explain",
        { model: String(args.model) },
        router ? { nodeID: router } : {},
      );
      return formatRoute(ex);
    },
    { options: [{ option: "-r, --router <nodeID>", description: "ask this router's balancer (each has its own)" }] },
  ),
  command("drain <node>", "Send no new requests to <node>; those in flight finish", (broker, args) =>
    audited(broker, "repl", "drain", String(args.node), null, () => setDraining(broker, String(args.node), true)),
  ),
  command("undrain <node>", "Let <node> take requests again", (broker, args) =>
    audited(broker, "repl", "undrain", String(args.node), null, () => setDraining(broker, String(args.node), false)),
  ),
  command(
    "history <what> [n]",
    "history tail [n]: the newest n requests (default 10), one line each",
    async (broker, args) => {
      if (args.what !== "tail") throw new Error(`unknown 'history ${String(args.what)}' (try: history tail [n])`);
      const n = args.n === undefined ? 10 : Number(args.n);
      if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error("n must be an integer from 1 to 200");
      const page = await broker.call<{ records: HistoryRow[] }, object>("history.list", { query: { per_page: n } });
      return formatHistory(page.records);
    },
  ),
  command(
    "load <model> [node]",
    "Load <model> on [node], or on the node that can take it soonest (models.load)",
    async (broker, args) => {
      const node = args.node === undefined ? undefined : String(args.node);
      const r = await audited(broker, "repl", "load", String(args.model), { node: node ?? null }, () =>
        broker.call<{ node: string; loaded_now: boolean }, object>(
          "models.load",
          { id: String(args.model), node },
          { timeout: 15 * 60_000 },
        ),
      );
      return r.loaded_now
        ? `${String(args.model)} is loaded on ${r.node}`
        : `${String(args.model)} was loaded on ${r.node} already`;
    },
  ),
  command(
    "unload <model> [node]",
    "Unload <model> from [node], or from every node that has it loaded; its file stays (models.unload)",
    async (broker, args) => {
      const node = args.node === undefined ? undefined : String(args.node);
      const r = await audited(broker, "repl", "unload", String(args.model), { node: node ?? null }, () =>
        broker.call<{ nodes: string[] }, object>("models.unload", { id: String(args.model), node }),
      );
      return `${String(args.model)} unloaded from ${r.nodes.join(", ")}`;
    },
  ),
  command("models", "Models loaded and available per node, and the catalog", async (broker) => {
    const served = await broker.call<ServedModel[], object>("registry.models", {});
    const catalog = broker.registry.getActionEndpoints("models.list")
      ? await broker.call<CatalogRow[], object>("models.list", {})
      : null;
    return formatModels(served, catalog);
  }),
];

async function setDraining(broker: ServiceBroker, id: string, draining: boolean): Promise<string> {
  const view = await broker.call<{ id: string; active_requests: number }, object>("registry.drain", { id, draining });
  return draining
    ? `${view.id} is draining: no new requests; ${view.active_requests} in flight finish there`
    : `${view.id} takes requests again`;
}

/**
 * Moleculer's own `nodes` becomes `cluster-nodes` (ours is `nodes`); `env` is
 * left out and `info` masks the transporter's credentials: they would print
 * secrets (every environment variable; the TRANSPORTER URL with its password).
 * Its `load` and `loadFolder` (a service from a file into the console's own
 * broker) are left out: `load` is ours (a model on a node).
 */
function adjustBuiltins(): void {
  // the same module instances moleculer-repl's command index loads
  const loadModule = createRequire(__filename);
  type Register = (program: { command(name: string): unknown }, broker: ServiceBroker) => void;
  type Handler = (broker: ServiceBroker, args: unknown) => Promise<void>;
  type Declare = (program: unknown, broker: ServiceBroker, handler: Handler) => void;
  const load = (name: string) =>
    loadModule(`moleculer-repl/src/commands/${name}.js`) as {
      register: Register;
      declaration: Declare;
      handler: Handler;
    };
  const nodes = load("nodes");
  const registerNodes = nodes.register;
  nodes.register = (program, broker) =>
    registerNodes({ command: (name) => program.command(name === "nodes" ? "cluster-nodes" : name) }, broker);
  load("env").register = () => undefined;
  load("load").register = () => undefined;
  const info = load("info");
  info.register = (program, broker) =>
    info.declaration(program, broker, async (b, args) => {
      const tx = b.transit?.tx as { opts?: unknown } | undefined;
      const saved = { options: b.options.transporter, tx: tx?.opts };
      b.options.transporter = redact(saved.options) as BrokerOptions["transporter"];
      if (tx) tx.opts = redact(saved.tx);
      try {
        await info.handler(b, args); // prints synchronously
      } finally {
        b.options.transporter = saved.options;
        if (tx) tx.opts = saved.tx;
      }
    });
}

export async function replCommand(): Promise<void> {
  const options = brokerConfig();
  if (!options.transporter) {
    throw new Error(
      "the ops console joins a cluster and has nothing to look at on its own: " +
        "set TRANSPORTER=nats://host:4222 (the router's NATS)",
    );
  }
  if (!isSet(ENV.NODEID)) options.nodeID = `repl-${options.nodeID}`;
  // quiet unless asked: the console's output is the commands' answers
  if (!isSet(ENV.LOGLEVEL)) {
    const level: LogLevels = "warn";
    options.logLevel = level;
    options.logger = { type: "Console", options: { level, formatter: "short", colors: process.stdout.isTTY === true } };
  }
  options.replOptions = { delimiter: "llm-router $", customCommands: COMMANDS };
  const broker = new ServiceBroker(options);
  await broker.start();
  const url = clusterConfig().transporter ?? "";
  try {
    await broker.waitForServices(["registry"], 15_000);
    const routers = broker.registry.getServiceList({ onlyAvailable: true }).filter((s) => s.name === "registry");
    console.log(
      `Connected to ${maskUrl(url)} as ${broker.nodeID}; router(s): ${routers.map((s) => s.nodeID).join(", ")}. ` +
        "Commands: nodes, route <model>, drain <node>, undrain <node>, history tail [n], models, help, exit.",
    );
  } catch {
    console.log(`Connected to ${maskUrl(url)} as ${broker.nodeID}, but no router (registry service) answered yet.`);
  }
  adjustBuiltins();
  broker.repl();
}
