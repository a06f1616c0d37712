/**
 * The router's in-process core: what the router services of one process
 * share, made once per broker and handed to each of them by `routerCore()`.
 * The registry fills the node table and the external runtimes, the balancer
 * service sets up the balancer, apikeys the key index and history its sink;
 * the api reads them all directly (no action call, no context, on the hot
 * path). Nothing here reaches into a service: services meet in the core.
 */
import type { ServiceBroker } from "moleculer";
import type { KeyIdentity } from "../auth/keys";
import type { Access } from "../auth/routes";
import type { Grant } from "../quota/quota";
import { NodeTable } from "../cluster/node-table";
import type { RecordEvent } from "../history/record";
import type { LaneReceiver } from "../cluster/lane-receiver";
import type { Balancer } from "../routing/balancer";
import type { ExternalRuntime } from "../runtimes/openai-upstream";

/** Checks an API key (services/apikeys.service.ts): its identity, or a 401/403/429. */
export interface KeyIndex {
  /** `hit`: admits a request (its grant in the identity when the key or its user has limits). */
  verifyKey(key: string, hit: boolean, route?: KeyRoute): KeyIdentity | Promise<KeyIdentity>;
  /** The tokens an admitted request used since its last report, and whether it ended. */
  useQuota(grant: Grant, tokens: number, ended: boolean): Promise<void>;
}

/** The route a key is shown to, checked against its scopes. */
export interface KeyRoute {
  method: string;
  path: string;
  access: Access;
}

/** Takes finished requests' records (services/history.service.ts). */
export interface HistorySink {
  accept(rec: RecordEvent): void;
  /**
   * Set while records go through the durable stream: resolves once this one
   * is there (never rejects). The api holds the answer's last bytes until
   * then, so an answered request is never lost with its router.
   */
  commit?: (rec: RecordEvent) => Promise<void>;
  /**
   * Resolves once the history service has stopped: the records it wrote last
   * have been handed to the usage service, which waits for this before it
   * writes its own totals and stops.
   */
  stopped?: Promise<void>;
}

/**
 * Aliases and fallback chains (services/aliases.service.ts), read on the hot
 * path without an action call.
 */
export interface ModelRoutes {
  /**
   * The models to try for what a client asked for, in order: the model it
   * names (an alias followed to a local, runtime or cloud model), then its
   * fallbacks (each resolved the same way, no model twice). `[requested]`
   * when nothing is set for it.
   */
  chain(requested: string): string[];
  /** The model an alias names in the end (`name` itself when it is no alias). */
  resolve(name: string): string;
  /** What is set: the aliases, and the fallbacks of real models. */
  list(): {
    aliases: Array<{ alias: string; model: string; fallbacks: string[] }>;
    fallbacks: Array<{ model: string; fallbacks: string[] }>;
  };
}

/** What the core reads of a Moleculer endpoint of `inference.chat`. */
interface ChatEndpoint {
  isAvailable: boolean;
}

export interface CoreOptions {
  /** Whether a node can take requests now; by default Moleculer's endpoints say (simulations pass their own). */
  reachable?: (nodeID: string) => boolean;
}

export class RouterCore {
  /** Every node the registry knows: inference nodes and external runtimes. */
  readonly table: NodeTable;
  /** The external runtimes the registry keeps, by node ID. */
  readonly externals = new Map<string, ExternalRuntime>();
  /** Set while this process runs each of these services. */
  balancer: Balancer | null = null;
  keys: KeyIndex | null = null;
  history: HistorySink | null = null;
  routes: ModelRoutes | null = null;
  /** The api's token lanes (lib/cluster/token-lanes.ts), with a transporter. */
  lanes: LaneReceiver | null = null;
  registry = false;
  /** nodeID → its `inference.chat` endpoint; rebuilt after Moleculer's services change. */
  private chatEndpoints: Map<string, ChatEndpoint> | null = null;

  constructor(
    private readonly broker: ServiceBroker,
    opts: CoreOptions = {},
  ) {
    const reachable = opts.reachable ?? ((nodeID: string) => this.reachable(nodeID));
    this.table = new NodeTable(reachable);
  }

  /** Whether requests can be sent to a node now: a registered runtime, or a node whose inference endpoint is available. */
  reachable(nodeID: string): boolean {
    return this.externals.has(nodeID) || this.endpointOf(nodeID)?.isAvailable === true;
  }

  /** Moleculer's endpoints changed (a node's services came or went): the next lookup rebuilds the index. */
  servicesChanged(): void {
    this.chatEndpoints = null;
    this.table.touch();
  }

  /** The external runtime behind a node ID, if it is one. */
  runtimeOf(nodeID: string): ExternalRuntime | undefined {
    return this.externals.get(nodeID);
  }

  /**
   * A node's `inference.chat` endpoint. Moleculer's own lookup by node
   * searches the action's endpoint list, which made checking every node
   * quadratic in the cluster's size; this index is rebuilt only when the
   * services change. Availability (Moleculer's circuit state) is read live.
   */
  private endpointOf(nodeID: string): ChatEndpoint | undefined {
    if (!this.chatEndpoints) {
      const list = this.broker.registry.getActionEndpoints("inference.chat") as unknown as
        { endpoints: Array<ChatEndpoint & { node: { id: string } }> } | undefined;
      this.chatEndpoints = new Map((list?.endpoints ?? []).map((ep) => [ep.node.id, ep]));
    }
    return this.chatEndpoints.get(nodeID);
  }
}

/**
 * The router services that need others in the same process (they share the
 * core): why `services` cannot run as one process, or null when they can.
 */
export function unmetPartners(services: string[]): string | null {
  const has = (s: string) => services.includes(s);
  if (has("api") && !has("balancer")) return "the api routes through a balancer in its own process: add balancer";
  if (has("balancer") && !has("registry"))
    return "the balancer reads the node table of the registry in its own process: add registry";
  if (has("models") && !has("registry"))
    return "the models service reads the node table of the registry in its own process: add registry";
  if (has("aliases") && !has("registry"))
    return "the aliases service checks models against the node table of the registry in its own process: add registry";
  return null;
}

const cores = new WeakMap<ServiceBroker, RouterCore>();

/** The core of `broker`'s process, made on first use (with `opts`, which later calls do not change). */
export function routerCore(broker: ServiceBroker, opts?: CoreOptions): RouterCore {
  let core = cores.get(broker);
  if (!core) cores.set(broker, (core = new RouterCore(broker, opts)));
  return core;
}
