/** The request path's wait before a retry, and what counts as the client's fault (services/api/inference.ts). */
import type { ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { apiError } from "../../lib/openai/errors";

/** Waits `ms` before a retry; a client that leaves meanwhile ends the request (499). */
export async function waitUnlessGone(res: ServerResponse, ms: number): Promise<void> {
  const gone = new AbortController();
  const onClose = () => gone.abort(apiError(499, "The client closed the connection.", "client_closed"));
  res.once("close", onClose);
  try {
    await sleep(ms, undefined, { signal: gone.signal });
  } catch {
    throw gone.signal.reason;
  } finally {
    res.off("close", onClose);
  }
}

export function isClientError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "number" && code >= 400 && code < 500;
}
