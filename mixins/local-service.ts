/**
 * A service of this very process, for the api's hot path: its methods are
 * called directly instead of through an action call (which costs a context,
 * the middlewares and, with metrics on, label hashing per call). Where the
 * service runs elsewhere (router replicas), callers fall back to the action.
 */
import type { Service, ServiceBroker } from "moleculer";

const found = new WeakMap<ServiceBroker, Map<string, Service | null>>();

export function localService<T extends object>(broker: ServiceBroker, name: string): (Service & T) | undefined {
  let byName = found.get(broker);
  if (!byName) found.set(broker, (byName = new Map()));
  let svc = byName.get(name);
  if (svc === undefined) {
    svc = (broker.getLocalService(name) as Service | undefined) ?? null;
    // only a service that exists is remembered: one not started yet is looked up again next time
    if (svc) byName.set(name, svc);
  }
  return (svc ?? undefined) as (Service & T) | undefined;
}
