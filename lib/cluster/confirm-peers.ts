/**
 * Tells every other process that runs a service to act on a change, and
 * waits until each one confirms (or fails to, logged): routers as peers on a
 * shared database answer a change once the others have read it again.
 */
import type { ServiceBroker } from "moleculer";

/** How long one peer may take to confirm. */
const CONFIRM_TIMEOUT_MS = 5000;

/** Node IDs of the other processes running `service` now. */
export function peersRunning(broker: ServiceBroker, service: string): string[] {
  return (broker.registry.getServiceList({ onlyAvailable: true }) as Array<{ name: string; nodeID: string }>)
    .filter((s) => s.name === service && s.nodeID !== broker.nodeID)
    .map((s) => s.nodeID);
}

/** Calls `action` (`<service>.<name>`) on every other process running its service; resolves once all answered. */
export async function confirmOnPeers(
  broker: ServiceBroker,
  action: string,
  log: { warn(message: string): void },
  what = "the change",
  params: Record<string, unknown> = {},
): Promise<void> {
  const service = action.slice(0, action.indexOf("."));
  await Promise.all(
    peersRunning(broker, service).map((nodeID) =>
      broker.call(action, params, { nodeID, timeout: CONFIRM_TIMEOUT_MS, retries: 0 }).catch((err: Error) => {
        log.warn(`${action} on ${nodeID} did not confirm ${what}: ${err.message}`);
      }),
    ),
  );
}
