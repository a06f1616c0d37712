/**
 * Audit entries for changes made from a console rather than the api: the
 * `llm-router user|key` commands (straight in the store) and the REPL's
 * drain, undrain, load and unload (through the cluster). The actor is the
 * operating-system user, marked with where the change came from; the
 * address is this machine's name. Secrets (a new password) are masked as
 * the api's entries are.
 */
import os from "node:os";
import type { ServiceBroker } from "moleculer";
import { redactSecrets, type AuditRecord } from "./chain";

function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return "unknown";
  }
}

/** The record of a console change: `via` is `cli` or `repl`, `action` e.g. "key create". */
export function consoleRecord(
  via: "cli" | "repl",
  action: string,
  target: string | null,
  changes: unknown,
  status: number,
): AuditRecord {
  return {
    ts: new Date().toISOString(),
    actor: `${via}:${osUser()}`,
    actor_role: via === "cli" ? "store" : "console",
    ip: os.hostname(),
    action: `${via.toUpperCase()} ${action}`,
    target,
    status,
    changes: changes === undefined || changes === null ? null : redactSecrets(changes),
  };
}

/** The status a failed change is recorded with: its error's, else 500. */
export function statusOf(err: unknown): number {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "number" && code >= 400 && code < 600 ? code : 500;
}

/**
 * Runs a console change and appends its entry, done or failed. No audit
 * service in reach (a REPL joined to a cluster without one) leaves a warning
 * on the console, never a failed change.
 */
export async function audited<T>(
  broker: ServiceBroker,
  via: "cli" | "repl",
  action: string,
  target: string | null,
  changes: unknown,
  change: () => Promise<T>,
): Promise<T> {
  const append = (status: number) =>
    broker
      .call("audit.append", consoleRecord(via, action, target, changes, status))
      .catch((err: Error) => console.warn(`warning: the audit log did not take this change: ${err.message}`));
  try {
    const result = await change();
    await append(200);
    return result;
  } catch (err) {
    await append(statusOf(err));
    throw err;
  }
}
