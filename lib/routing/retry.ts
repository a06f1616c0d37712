/**
 * Which failures are worth another node: the node went away, timed out, was
 * not reachable, was still loading, or failed itself (5xx). A client's own
 * mistake (4xx: bad input, context too long) fails the same way anywhere.
 */
import { NATS_MAX_PAYLOAD } from "../openai/errors";

interface LooseError {
  code?: unknown;
  type?: unknown;
}

const NODE_GONE = new Set([
  "REQUEST_REJECTED",
  "REQUEST_TIMEOUT",
  "SERVICE_NOT_AVAILABLE",
  "SERVICE_NOT_FOUND",
  "REQUEST_SKIPPED",
]);

export function isRetryable(err: unknown): boolean {
  const e = (err ?? {}) as LooseError;
  if (typeof e.type === "string" && NODE_GONE.has(e.type)) return true;
  // the node no longer has the model: the registry was stale
  if (e.type === "model_not_found" && e.code === 404) return true;
  if (e.type === "client_closed") return false;
  // a request too large for the transporter is too large for every node
  if (e.code === NATS_MAX_PAYLOAD) return false;
  return typeof e.code === "number" ? e.code >= 500 : true;
}
