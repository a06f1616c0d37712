/**
 * LLM_ROUTER_PROCESSES > 1: one router on several processes sharing the HTTP
 * port (Node's cluster module hands each new connection to a process in
 * turn). Process 0 hosts the services SERVICES names (accounts, keys,
 * history, models and, embedded, the local inference node); the others are
 * `gateway` replicas: the HTTP API, registry, balancer and clouds, calling
 * process 0 for the rest. Without a TRANSPORTER they talk through this
 * primary over IPC (lib/cluster/ipc-transporter.ts); with one, over it.
 *
 * The primary only relays and supervises: a process that dies after it was
 * ready is started again; one that fails before it was ready stops the
 * router (a port in use, a bad setting). SIGTERM/SIGINT: every process stops
 * taking connections at once; the gateways drain and stop, then process 0
 * (which holds history, keys and the local node they use) drains what is
 * left and stops; exit 0 when all did. A second signal stops them at once.
 */
import cluster, { type Worker } from "node:cluster";
import os from "node:os";
import type { BrokerOptions, ServiceBroker } from "moleculer";
import { IpcRelay, IpcTransporter, isIpcMessage, type IpcMessage } from "../lib/cluster/ipc-transporter";
import { clusterConfig, metricsConfig } from "../lib/config";

interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** What the primary says (it has no broker). */
const primaryLog: Logger = {
  info: (msg) => console.log(`[${new Date().toISOString()}] INFO  router-primary: ${msg}`),
  warn: (msg) => console.warn(`[${new Date().toISOString()}] WARN  router-primary: ${msg}`),
  error: (msg) => console.error(`[${new Date().toISOString()}] ERROR router-primary: ${msg}`),
};

/** Checks that `services` can run as `count` processes, then becomes their primary. */
export function startRouterProcesses(count: number, services: string[]): void {
  if (!clusterConfig().transporter && !(services.includes("apikeys") && services.includes("auth"))) {
    throw new Error(
      "LLM_ROUTER_PROCESSES without TRANSPORTER: SERVICES must include auth and apikeys (the router's own state).",
    );
  }
  if (metricsConfig().port !== null) {
    primaryLog.warn(
      "LLM_ROUTER_METRICS_PORT is not served with LLM_ROUTER_PROCESSES > 1: scrape /metrics on the API port, which answers for every process.",
    );
  }
  runPrimary(count, primaryLog);
}

/** Router process `index`: over IPC unless a TRANSPORTER is set, and marked as one of its router's processes. */
export function asRouterProcess(options: BrokerOptions, index: number): void {
  options.transporter ??= new IpcTransporter();
  options.metadata = { routerGroup: routerGroup(process.ppid), routerProcess: index };
}

/**
 * A started router process follows its primary: SIGINT is left to the
 * primary (a terminal sends it to all of them, and the primary stops them
 * in order), `close` stops taking connections, `stop` drains and stops.
 * Set up before the broker starts; the returned function tells the primary
 * the process is ready.
 */
export function followPrimary(broker: ServiceBroker, stop: (reason: string) => void): () => void {
  process.on("SIGINT", () => undefined);
  process.on("message", (m: unknown) => {
    if (!isIpcMessage(m)) return;
    if (m.llmRouterIpc === "stop") stop("stop from the primary");
    if (m.llmRouterIpc === "close") (broker.getLocalService("api") as { stopAccepting?(): void }).stopAccepting?.();
  });
  // the primary holds its commands until now: one sent earlier (a SIGTERM while this process loads) would be lost
  process.send?.({ llmRouterIpc: "listening" });
  return () => process.send?.({ llmRouterIpc: "ready" });
}

/** The router processes of this primary share this group (in their broker's metadata). */
export function routerGroup(primaryPid: number): string {
  return `${os.hostname()}-${primaryPid}`;
}

/** What worker `index` is started with: its role on the command line, its services and node ID in its env. */
export function workerSetup(index: number, env: NodeJS.ProcessEnv): { args: string[]; env: Record<string, string> } {
  const out: Record<string, string> = {};
  if (index > 0) {
    out.SERVICES = "gateway";
    if (env.NODEID) out.NODEID = `${env.NODEID}-${index}`;
  }
  return { args: ["start", "--worker", String(index)], env: out };
}

export function runPrimary(count: number, log: Logger): void {
  const relay = new IpcRelay();
  const indexOf = new Map<number, number>();
  const ready = new Set<number>();
  /** Commands (close, stop) for a process that does not listen for them yet, by worker id. */
  const held = new Map<number, IpcMessage[]>();
  let stopping = false;
  let exitCode = 0;

  const fork = (index: number) => {
    const setup = workerSetup(index, process.env);
    cluster.setupPrimary({ serialization: "advanced", args: setup.args });
    const w = cluster.fork(setup.env);
    log.info(`router process ${index} started (pid ${w.process.pid})`);
    indexOf.set(w.id, index);
    relay.add({ id: w.id, send: (m) => tell([w], m) });
    held.set(w.id, []);
    w.on("message", (m: unknown) => {
      if (isIpcMessage(m) && m.llmRouterIpc === "ready") ready.add(w.id);
      else if (isIpcMessage(m) && m.llmRouterIpc === "listening") {
        const waiting = held.get(w.id) ?? [];
        held.delete(w.id);
        for (const c of waiting) tell([w], c);
      } else relay.handle(w.id, m);
    });
  };
  const tell = (workers: Array<Worker | undefined>, m: IpcMessage) => {
    for (const w of workers) if (w?.isConnected()) w.send(m, undefined, () => undefined);
  };
  /** A command reaches a process that is still loading once it listens. */
  const command = (workers: Array<Worker | undefined>, m: IpcMessage) => {
    for (const w of workers) {
      const waiting = w && held.get(w.id);
      if (waiting) waiting.push(m);
      else tell([w], m);
    }
  };
  const gateways = () => [...indexOf].filter(([, i]) => i > 0).map(([id]) => cluster.workers?.[id]);
  const first = () => [...indexOf].filter(([, i]) => i === 0).map(([id]) => cluster.workers?.[id]);
  const stop = (workers: Array<Worker | undefined>) => command(workers, { llmRouterIpc: "stop" });

  cluster.on("exit", (w, code, signal) => {
    const index = indexOf.get(w.id) ?? -1;
    const wasReady = ready.delete(w.id);
    indexOf.delete(w.id);
    held.delete(w.id);
    relay.remove(w.id);
    if (stopping) {
      if (code || signal) exitCode = 1;
      // the gateways are gone: now process 0, which holds history
      if (index > 0 && gateways().length === 0) stop(first());
      if (indexOf.size === 0) process.exit(exitCode);
      return;
    }
    if (!wasReady) {
      log.error(`router process ${index} failed to start (${signal ?? `exit ${code}`}); stopping the router`);
      stopping = true;
      exitCode = 1;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill("SIGTERM");
      if (indexOf.size === 0) process.exit(1);
      return;
    }
    log.warn(`router process ${index} (pid ${w.process.pid}) exited (${signal ?? `exit ${code}`}); starting it again`);
    setTimeout(() => fork(index), 1000).unref();
  });

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: stopping the router processes now`);
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
      return;
    }
    stopping = true;
    log.info(`${signal}: draining the router processes (gateways first)`);
    const gw = gateways();
    if (gw.length) {
      stop(gw);
      // process 0 takes no new connections either, but keeps serving the gateways until they are gone
      command(first(), { llmRouterIpc: "close" });
    } else stop(first());
  };
  // the processes ignore SIGINT (a terminal sends it to all of them): this primary stops them in order
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  const gatewayList = count === 2 ? "process 1 a gateway" : `processes 1–${count - 1} gateways`;
  log.info(`Starting ${count} router processes on one port (process 0 hosts the services, ${gatewayList})`);
  for (let i = 0; i < count; i++) fork(i);
}
