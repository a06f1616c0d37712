/**
 * Liveness for container health checks. An inference node serves no HTTP, so
 * a started process writes a small "beat" file every few seconds while its
 * broker runs and its transporter is connected (`LLM_HEALTH_FILE`);
 * `bin/healthcheck.ts` reads it back, and for a process that hosts the api it
 * also asks `GET /health?ready=1` (503 until it is ready). A hung event loop,
 * a stopped broker or a NATS server that does not answer all leave the file
 * stale, and the check fails.
 */
import fs from "node:fs";
import path from "node:path";
import type { ServiceBroker } from "moleculer";

export interface LivenessBeat {
  /** ms since the epoch when the beat was written */
  ts: number;
  nodeID: string;
  pid: number;
  services: string[];
}

export interface CheckResult {
  ok: boolean;
  reason: string;
}

/** How often a running process rewrites its beat file. */
export const BEAT_INTERVAL_MS = 5_000;
/** A beat older than this counts as dead (six missed beats). */
export const DEFAULT_MAX_AGE_MS = 30_000;

/** Writes the beat atomically (temporary file, then rename), so a reader never sees half a file. */
export function writeBeat(file: string, beat: LivenessBeat): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(beat));
  fs.renameSync(tmp, file);
}

type TransitWithClient = NonNullable<ServiceBroker["transit"]> & {
  tx?: { connected?: boolean; client?: { rtt?: () => Promise<number> } | null };
};

/**
 * True while the broker runs and, when it has a transporter, reaches it now.
 * Moleculer's NATS client reconnects forever and keeps calling itself
 * connected meanwhile, so for NATS this is a round trip to the server
 * (`rtt()`, which fails at once while disconnected) within `timeoutMs`.
 */
export async function brokerIsLive(broker: ServiceBroker, timeoutMs = 2_000): Promise<boolean> {
  if (!broker.started) return false;
  const transit = broker.transit as TransitWithClient | undefined;
  if (!transit) return true; // embedded: no transporter to lose
  if (!transit.connected || transit.tx?.connected === false) return false;
  const client = transit.tx?.client;
  if (!client || typeof client.rtt !== "function") return true;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.rtt(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts writing the beat file every `intervalMs` while `brokerIsLive`; a
 * broker that is not live writes nothing, so the file goes stale. `onTick`
 * hears after each tick whether it wrote (tests wait on it). Returns a
 * function that stops the timer and removes the file.
 */
export function startLiveness(
  broker: ServiceBroker,
  file: string,
  services: string[],
  intervalMs = BEAT_INTERVAL_MS,
  onTick?: (wrote: boolean) => void,
): () => void {
  let busy = false;
  let stopped = false;
  const beat = async () => {
    if (busy || stopped) return;
    busy = true;
    let wrote = false;
    try {
      if (!(await brokerIsLive(broker, Math.min(2_000, intervalMs))) || stopped) return;
      writeBeat(file, { ts: Date.now(), nodeID: broker.nodeID, pid: process.pid, services });
      wrote = true;
    } catch (err) {
      broker.logger.warn(`health file ${file} not written: ${(err as Error).message}`);
    } finally {
      busy = false;
      onTick?.(wrote);
    }
  };
  void beat();
  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    fs.rmSync(file, { force: true });
  };
}

/** Reads the beat file: fresh (younger than `maxAgeMs`) is ok; missing, unreadable or stale is not. */
export function checkBeat(file: string, maxAgeMs = DEFAULT_MAX_AGE_MS, now = Date.now()): CheckResult {
  let beat: Partial<LivenessBeat>;
  try {
    beat = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<LivenessBeat>;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, reason: e.code === "ENOENT" ? `no health file ${file} yet` : `health file: ${e.message}` };
  }
  if (typeof beat.ts !== "number") return { ok: false, reason: `health file ${file} has no timestamp` };
  const age = now - beat.ts;
  if (age > maxAgeMs) {
    return { ok: false, reason: `last beat ${Math.round(age / 1000)} s ago (node ${beat.nodeID ?? "?"})` };
  }
  return { ok: true, reason: `node ${beat.nodeID ?? "?"} beat ${Math.max(0, Math.round(age / 1000))} s ago` };
}

/** `GET url` answered 2xx within `timeoutMs`. */
export async function checkHttp(url: string, timeoutMs = 4_000): Promise<CheckResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok ? { ok: true, reason: `${url}: ${res.status}` } : { ok: false, reason: `${url}: ${res.status}` };
  } catch (err) {
    return { ok: false, reason: `${url}: ${(err as Error).message}` };
  }
}

/**
 * Where this process's own `/health` answers: the API's host (loopback for a
 * wildcard bind) and port. `ready`: its readiness form, which answers 503
 * until the process is ready (lib/cluster/readiness.ts).
 */
export function localHealthUrl(host: string, port: number, ready = false): string {
  const h = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}/health${ready ? "?ready=1" : ""}`;
}

export interface HealthcheckPlan {
  /** the api's `/health`, when this process hosts the api */
  url: string | null;
  /** the beat file, when one is configured */
  file: string | null;
  maxAgeMs: number;
}

/** Runs every check the plan names; all must pass, and at least one must exist. */
export async function runHealthcheck(plan: HealthcheckPlan): Promise<CheckResult> {
  const results: CheckResult[] = [];
  if (plan.url) results.push(await checkHttp(plan.url));
  if (plan.file) results.push(checkBeat(plan.file, plan.maxAgeMs));
  if (results.length === 0) {
    return { ok: false, reason: "nothing to check: this process hosts no api and LLM_HEALTH_FILE is not set" };
  }
  return { ok: results.every((r) => r.ok), reason: results.map((r) => r.reason).join("; ") };
}
