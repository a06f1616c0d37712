/**
 * Readiness of a router process, for `GET /health`: "ok" once every service
 * this process hosts has started (Moleculer registers a local service only
 * when its `started` has run: history has loaded its store, auth has its
 * admin, the registry its settings…) and this router's own inference nodes
 * can serve (the embedded node has loaded its models, and the registry sees
 * it online and reachable). Until then "starting", with what it waits for.
 *
 * `readiness` is the pure decision; `readinessOf` gathers its input from a
 * running broker. Plain `/health` answers 200 whatever it says (liveness);
 * `/health?ready=1` answers 503 unless it is "ok" (a readiness probe).
 */
import type { ServiceBroker } from "moleculer";
import type { NodeStatus } from "./types";

/**
 * - `starting`: not ready yet since the process started
 * - `ok`: ready
 * - `degraded`: was ready, but something it needs is gone now (e.g. its embedded node went offline)
 * - `stopping`: draining after SIGTERM (it takes no new connections)
 */
export type HealthStatus = "ok" | "starting" | "degraded" | "stopping";

/** An inference node as this process's registry sees it. */
export interface InferenceNodeState {
  id: string;
  /** "unknown": the registry has no record of it (no heartbeat yet), or cannot be asked. */
  status: NodeStatus | "unknown";
  /** Whether requests can be sent to it now (its actions are announced and available). */
  reachable: boolean;
}

export interface ReadinessInput {
  /** The services this process hosts and whether each has started. Moleculer's own (`$node`) are left out. */
  services: Array<{ name: string; started: boolean }>;
  /**
   * This router's own inference nodes: the embedded one (when this process
   * runs one) and, for one of several router processes, the one its process 0
   * runs. Empty without a registry in this process (nothing to ask).
   */
  inferenceNodes: InferenceNodeState[];
  /**
   * For router process 1, 2… (LLM_ROUTER_PROCESSES > 1): what process 0,
   * which hosts history, keys and the node, says of itself ("unknown": not
   * found or not answering). Undefined for any other process.
   */
  firstProcess?: HealthStatus | "unknown";
  /** The api takes no new connections (SIGTERM). */
  stopping: boolean;
  /** This process has said "ok" before. */
  wasReady: boolean;
}

export interface Readiness {
  status: HealthStatus;
  /** What is not ready yet, in a stable order: service names, "inference", "router process 0". */
  waiting_for: string[];
}

export const FIRST_PROCESS = "router process 0";

export function readiness(input: ReadinessInput): Readiness {
  const waiting = new Set<string>();
  for (const s of input.services) if (!s.started && !s.name.startsWith("$")) waiting.add(s.name);
  for (const n of input.inferenceNodes) if (n.status !== "online" || !n.reachable) waiting.add("inference");
  if (input.firstProcess !== undefined && input.firstProcess !== "ok") waiting.add(FIRST_PROCESS);
  const waiting_for = [...waiting];
  const status: HealthStatus = input.stopping
    ? "stopping"
    : waiting_for.length === 0
      ? "ok"
      : input.wasReady
        ? "degraded"
        : "starting";
  return { status, waiting_for };
}

/** `?ready`, `?ready=1`, `?ready=true`, `?ready=yes`: the caller wants a 503 unless ready. */
export function wantsReadiness(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  const v = String(Array.isArray(value) ? value[value.length - 1] : value)
    .trim()
    .toLowerCase();
  return !["0", "false", "no", "off"].includes(v);
}

/** The HTTP status `/health` answers: 200, or 503 for a readiness probe of a process that is not ready. */
export function healthHttpStatus(r: Readiness, probe: boolean): number {
  return probe && r.status !== "ok" ? 503 : 200;
}

interface NodeInfo {
  id: string;
  available: boolean;
  metadata?: { routerGroup?: string; routerProcess?: number };
}

const readyOnce = new WeakSet<ServiceBroker>();

/**
 * The readiness of the process of `broker` now. Asks the local registry for
 * the state of this router's inference nodes (`registry.nodeState`), and,
 * in router process 1, 2…, process 0 for its own (`api.health` there).
 */
export async function readinessOf(broker: ServiceBroker, stopping: boolean): Promise<Readiness> {
  const self = broker.nodeID;
  const started = (name: string, nodeID = self) => broker.registry.hasService(name, nodeID);
  const services = (broker.services as Array<{ fullName: string }>)
    .map((s) => ({ name: s.fullName, started: started(s.fullName) }))
    .filter((s) => !s.name.startsWith("$"));
  const hosted = (name: string) => services.some((s) => s.name === name);

  const meta = broker.metadata as NodeInfo["metadata"];
  const siblings =
    meta?.routerGroup === undefined
      ? []
      : (broker.registry.nodes.toArray() as NodeInfo[]).filter(
          (n) => n.available && n.id !== self && n.metadata?.routerGroup === meta.routerGroup,
        );

  // the nodes this router runs itself: its own, and (router processes) those of its siblings
  const nodeIds = [
    ...(hosted("inference") ? [self] : []),
    ...siblings.filter((n) => started("inference", n.id)).map((n) => n.id),
  ];
  const unknown = (id: string): InferenceNodeState => ({ id, status: "unknown", reachable: false });
  let inferenceNodes: InferenceNodeState[] = [];
  if (hosted("registry")) {
    inferenceNodes = await Promise.all(
      nodeIds.map((id) =>
        started("registry")
          ? broker
              .call<Omit<InferenceNodeState, "id">, { id: string }>("registry.nodeState", { id }, { nodeID: self })
              .then((s) => ({ id, status: s.status, reachable: s.reachable }))
              .catch(() => unknown(id))
          : unknown(id),
      ),
    );
  }

  let firstProcess: ReadinessInput["firstProcess"];
  if (meta?.routerGroup !== undefined && meta.routerProcess !== 0) {
    const first = siblings.find((n) => n.metadata?.routerProcess === 0);
    firstProcess =
      first && started("api", first.id)
        ? await broker
            .call<{ status?: HealthStatus }, object>("api.health", {}, { nodeID: first.id, timeout: 2_000 })
            .then((h) => h.status ?? "unknown")
            .catch(() => "unknown" as const)
        : "unknown";
  }

  const r = readiness({ services, inferenceNodes, firstProcess, stopping, wasReady: readyOnce.has(broker) });
  if (r.status === "ok") readyOnce.add(broker);
  return r;
}
