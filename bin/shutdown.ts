/**
 * SIGTERM/SIGINT: every local service that can drain does (an inference node
 * takes nothing new and finishes its generations; a router stops accepting
 * and finishes its requests and streams), within LLM_SHUTDOWN_TIMEOUT_SECS;
 * then the broker stops (history flushes on stop) and the process exits 0.
 * A second signal stops at once. Returns the same graceful stop for other
 * callers (a router process told to stop by its primary); it does nothing
 * when a stop is already under way, and says whether one is (`stopping`).
 *
 * A signal during start stops at once too: the services still starting go
 * on until the process exits, so `start` must not treat what they then do
 * (a failed start, a late `$broker.started`) as its own (see bin/main.ts).
 */
import type { ServiceBroker } from "moleculer";

type Drainable = { name: string; drain?: (timeoutMs: number) => Promise<void> };

export interface GracefulStop {
  (reason: string): void;
  /** A stop is under way (a signal or a call came). */
  readonly stopping: boolean;
}

export function stopGracefully(
  broker: ServiceBroker,
  timeoutSecs: number,
  signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"],
): GracefulStop {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) {
      broker.logger.warn(`${signal} again: stopping now`);
      process.exit(1);
    }
    stopping = true;
    broker.logger.info(`${signal}: draining (at most ${timeoutSecs} s), then stopping`);
    const services = broker.services as unknown as Drainable[];
    Promise.all(services.map((s) => s.drain?.(timeoutSecs * 1000)))
      .catch((err: Error) => broker.logger.warn(`drain: ${err.message}`))
      .then(() => broker.stop())
      .then(
        () => process.exit(0),
        (err: Error) => {
          broker.logger.error(`stop failed: ${err.message}`);
          process.exit(1);
        },
      );
  };
  for (const s of signals) process.on(s, onSignal);
  const stop = (reason: string) => {
    if (!stopping) onSignal(reason);
  };
  return Object.defineProperty(stop, "stopping", { get: () => stopping }) as GracefulStop;
}
