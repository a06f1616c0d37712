/**
 * The one retry policy of the request path, for every kind of upstream
 * (lib/upstreams/): which failures before the first byte are worth another
 * attempt, and how long to wait first. A node or runtime that failed is not
 * tried again for the request (the balancer picks another at once); a cloud
 * provider is the same upstream every time, so it is retried after its
 * Retry-After, or an exponential backoff.
 */
import { NATS_MAX_PAYLOAD } from "../openai/errors";
import type { UpstreamKind } from "../upstreams/types";

interface LooseError {
  code?: unknown;
  type?: unknown;
  data?: { retryAfter?: unknown } | null;
}

const NODE_GONE = new Set([
  "REQUEST_REJECTED",
  "REQUEST_TIMEOUT",
  "SERVICE_NOT_AVAILABLE",
  "SERVICE_NOT_FOUND",
  "REQUEST_SKIPPED",
]);

/** A node could not load the model: its own trouble, not the request's. */
const NODE_LOAD_FAILED = new Set(["model_load_failed", "model_does_not_fit", "invalid_model_file"]);

/**
 * Whether a failure could go differently on another attempt: the upstream
 * went away, timed out, was not reachable, was still loading, was busy (429)
 * or failed itself (5xx). A client's own mistake (other 4xx: bad input,
 * context too long) fails the same way anywhere.
 */
export function isRetryable(err: unknown): boolean {
  const e = (err ?? {}) as LooseError;
  if (typeof e.type === "string" && NODE_GONE.has(e.type)) return true;
  // the node no longer has the model: the registry was stale
  if (e.type === "model_not_found" && e.code === 404) return true;
  // the model could not be loaded on that node (no room, a bad file there): another node may load it
  if (typeof e.type === "string" && NODE_LOAD_FAILED.has(e.type)) return true;
  if (e.type === "client_closed") return false;
  // a request too large for the transporter is too large for every node
  if (e.code === NATS_MAX_PAYLOAD) return false;
  return typeof e.code === "number" ? e.code === 429 || e.code >= 500 : true;
}

export interface RetryOptions {
  /** Attempts after the first. */
  maxRetries: number;
  /** Longest Retry-After the router waits out itself; past it the error goes to the client. */
  maxRetryAfterSecs?: number;
  /** Base of the exponential backoff for an upstream tried again. */
  backoffMs?: number;
}

export interface RetryDecision {
  retry: boolean;
  /** How long to wait before the next attempt. */
  delayMs: number;
}

const NO: RetryDecision = { retry: false, delayMs: 0 };

/** After attempt number `attempt` (0 for the first) failed with `err` on an upstream of `kind`: again, and when? */
export function retryDecision(err: unknown, attempt: number, kind: UpstreamKind, opts: RetryOptions): RetryDecision {
  if (attempt >= opts.maxRetries || !isRetryable(err)) return NO;
  // another node or runtime is picked: no reason to wait
  if (kind !== "cloud") return { retry: true, delayMs: 0 };
  const e = err as LooseError;
  // the same provider again: not after it timed out (it would again), after its Retry-After otherwise
  if (e.type === "upstream_timeout") return NO;
  const after = typeof e.data?.retryAfter === "number" ? e.data.retryAfter : null;
  if (after !== null) {
    return after > (opts.maxRetryAfterSecs ?? 30) ? NO : { retry: true, delayMs: after * 1000 };
  }
  const base = opts.backoffMs ?? 250;
  return { retry: true, delayMs: base * 2 ** attempt * (0.75 + Math.random() * 0.5) };
}
