/**
 * The audit trail's one place in the api: moleculer-web's `onBeforeCall`
 * of the `/api` mount (services/api/routes.ts), before the gate. A mutating
 * route that needs an admin (lib/auth/routes.ts; not `/api/auth/*`), or a
 * login's change to its own keys, is
 * appended to the audit log (services/audit.service.ts) once it has been
 * answered, whatever the answer: done, refused by the service, or refused by
 * the gate to a login that is no admin (403). A request with no valid login
 * (401) is not recorded: anyone could fill the log. Nothing waits for the
 * append; a failure is logged. Recorded: the route, its path parameters,
 * the request body with secrets masked (lib/audit/chain.ts), the status,
 * the login and the client's address; never a header, never an answer (a
 * new API key is in one).
 */
import type { ServerResponse } from "node:http";
import { redactSecrets, type AuditRecord } from "../../lib/audit/chain";
import { accessFor, routePath } from "../../lib/auth/routes";
import type { Gateway } from "./gateway";
import type { Req } from "./types";

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Changes any login may make (to its own keys): recorded like an admin's. */
const OWN_CHANGES = new Set(["POST /api/api-keys", "DELETE /api/api-keys/:id"]);

/** Whether requests to a route (its path as the route table spells it) go to the audit log. */
export function isAudited(method: string, path: string): boolean {
  return (
    MUTATING.has(method) &&
    path.startsWith("/api/") &&
    !path.startsWith("/api/auth/") &&
    (accessFor(method, path) === "admin" || OWN_CHANGES.has(`${method} ${path}`))
  );
}

/** The path's parameters: the value of one, `name=value` pairs of several; null without. */
export function targetOf(path: string, params: Record<string, unknown> | undefined): string | null {
  const names = path
    .split("/")
    .filter((s) => s.startsWith(":") || s.startsWith("*"))
    .map((s) => s.slice(1));
  const values = names.map((n) => [n, params?.[n]] as const).filter(([, v]) => v !== undefined && v !== null);
  if (values.length === 0) return null;
  if (values.length === 1) return String(values[0][1]);
  return values.map(([n, v]) => `${n}=${String(v)}`).join(", ");
}

/** moleculer-web's alias, as far as it is read here. */
interface Alias {
  method: string;
  fullPath: string;
}

/** Appends the request to the audit log once it has been answered, when its route is audited. */
export function auditWhenAnswered(gw: Gateway, req: Req, res: ServerResponse, alias: Alias): void {
  const path = routePath(alias.fullPath);
  if (!isAudited(alias.method, path)) return;
  const action = `${alias.method} ${path}`;
  const failed = (err: unknown) => gw.logger.warn(`audit log: ${action} not recorded: ${(err as Error)?.message}`);
  try {
    // taken now, before a handler runs: the path's parameters (moleculer-web merges the body into $params too),
    // the body, and the address while the socket is there
    const base = {
      ip: gw.clientIp(req),
      action,
      target: targetOf(path, req.$params),
      changes: req.body === undefined ? null : redactSecrets(req.body),
    };
    let recorded = false;
    const record = (status: number) => {
      if (recorded) return;
      recorded = true;
      const auth = req.$auth;
      // the gate let no login through: nothing known of who asked
      if (auth?.kind !== "user") return;
      const entry: AuditRecord = {
        ...base,
        ts: new Date().toISOString(),
        actor: auth.claims.username,
        actor_role: auth.claims.role,
        status,
      };
      // an event listener that threw would end the process
      Promise.resolve()
        .then(() => gw.broker.call("audit.append", entry))
        .catch(failed);
    };
    res.once("finish", () => record(res.statusCode));
    // the client went away before the answer was written out
    res.once("close", () => record(res.writableFinished ? res.statusCode : 499));
  } catch (err) {
    failed(err);
  }
}
