/**
 * A broker stopped while its services start (SIGTERM as soon as the port
 * answers) stops their `stopped` hooks at once: a database adapter is
 * closed under a `started` hook still running, which then fails on it. That
 * failure is the stop's doing, not a failed start: this middleware ends such
 * a start quietly (Moleculer would log "Unable to start all services" and
 * fail `broker.start()`), and runs no further start hook once the stop began.
 * A start that fails before any stop still fails as before.
 */
import type { Middleware, Service } from "moleculer";

type Hook = (this: Service) => unknown;
const GUARDED = Symbol("stop-during-start");

function stopping(service: Service): boolean {
  return (service.broker as unknown as { stopping?: boolean }).stopping === true;
}

export const StopDuringStart: Middleware = {
  name: "StopDuringStart",
  async serviceStarting(service: Service) {
    const schema = service.schema as { started?: Hook | Hook[]; [GUARDED]?: true };
    if (schema[GUARDED]) return;
    const hooks = [schema.started ?? []].flat().filter((h): h is Hook => typeof h === "function");
    if (!hooks.length) return;
    schema[GUARDED] = true;
    schema.started = async function (this: Service) {
      for (const hook of hooks) {
        if (stopping(service)) return;
        try {
          await hook.call(this);
        } catch (err) {
          if (!stopping(service)) throw err;
          service.logger.info(`start cut short by the stop (${(err as Error)?.message ?? err})`);
          return;
        }
      }
    };
  },
};
