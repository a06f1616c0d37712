import { Errors } from "moleculer";
import { NodeHealth } from "../../../../lib/cluster/node-health";
import { isRetryable, retryDecision } from "../../../../lib/routing/retry";
import { apiError, badRequest, modelNotFound } from "../../../../lib/openai/errors";

describe("isRetryable", () => {
  test("a node that went away, timed out or failed is worth another node", () => {
    expect(isRetryable(new Errors.RequestRejectedError({ action: "a", nodeID: "n" }))).toBe(true);
    expect(isRetryable(new Errors.RequestTimeoutError({ action: "a", nodeID: "n" }))).toBe(true);
    expect(isRetryable(new Errors.ServiceNotAvailableError({ action: "a", nodeID: "n" }))).toBe(true);
    expect(isRetryable(apiError(503, "loading", "node_initializing"))).toBe(true);
    expect(isRetryable(apiError(500, "boom", "engine_failed"))).toBe(true);
    expect(isRetryable(new Error("socket hang up"))).toBe(true);
  });

  test("the client's own mistakes are not", () => {
    expect(isRetryable(badRequest("too long", "max_tokens", "context_length_exceeded"))).toBe(false);
    expect(isRetryable(apiError(499, "gone", "client_closed"))).toBe(false);
    // a request larger than a NATS message is so for every node
    expect(isRetryable(Object.assign(new Error("MAX_PAYLOAD_EXCEEDED"), { code: "MAX_PAYLOAD_EXCEEDED" }))).toBe(false);
    // but a node that lost the model is: the registry was stale
    expect(isRetryable(modelNotFound("m"))).toBe(true);
  });
});

describe("retryDecision: one policy for nodes, runtimes and clouds", () => {
  const opts = { maxRetries: 2, backoffMs: 100 };
  const busy = (retryAfter?: number) => apiError(429, "slow down", "rate_limit_exceeded", { retryAfter });

  test("a node or runtime that failed or was busy: another one, at once, up to maxRetries", () => {
    for (const kind of ["node", "runtime"] as const) {
      expect(retryDecision(apiError(502, "down", "upstream_unreachable"), 0, kind, opts)).toEqual({
        retry: true,
        delayMs: 0,
      });
      expect(retryDecision(busy(5), 1, kind, opts)).toEqual({ retry: true, delayMs: 0 });
      expect(retryDecision(busy(), 2, kind, opts).retry).toBe(false);
      expect(retryDecision(badRequest("bad"), 0, kind, opts).retry).toBe(false);
    }
  });

  test("a cloud provider: the same one again, after its Retry-After or a growing backoff", () => {
    expect(retryDecision(busy(1), 0, "cloud", opts)).toEqual({ retry: true, delayMs: 1000 });
    const first = retryDecision(apiError(503, "overloaded", "upstream_error"), 0, "cloud", opts);
    const second = retryDecision(apiError(503, "overloaded", "upstream_error"), 1, "cloud", opts);
    expect(first.retry && second.retry).toBe(true);
    expect(first.delayMs).toBeGreaterThanOrEqual(75);
    expect(first.delayMs).toBeLessThanOrEqual(125);
    expect(second.delayMs).toBeGreaterThanOrEqual(150);
    expect(second.delayMs).toBeLessThanOrEqual(250);
  });

  test("a cloud provider is not retried past maxRetries, past a long Retry-After, or after it timed out", () => {
    expect(retryDecision(busy(1), 2, "cloud", opts).retry).toBe(false);
    expect(retryDecision(busy(31), 0, "cloud", opts).retry).toBe(false);
    expect(retryDecision(busy(60), 0, "cloud", { ...opts, maxRetryAfterSecs: 120 }).retry).toBe(true);
    expect(retryDecision(apiError(504, "slow", "upstream_timeout"), 0, "cloud", opts).retry).toBe(false);
    expect(retryDecision(badRequest("bad"), 0, "cloud", opts).retry).toBe(false);
  });
});

describe("NodeHealth", () => {
  test("benches after the threshold, for the cooldown, and again at the next failure", () => {
    const h = new NodeHealth(3, 1000);
    expect([h.failure("a", 0), h.failure("a", 1)]).toEqual([false, false]);
    expect(h.isBenched("a", 2)).toBe(false);
    expect(h.failure("a", 2)).toBe(true);
    expect(h.isBenched("a", 500)).toBe(true);
    expect(h.benched(500)).toEqual(["a"]);
    expect(h.isBenched("a", 1002)).toBe(false);
    expect(h.failure("a", 1100)).toBe(true);
    h.success("a");
    expect(h.isBenched("a", 1200)).toBe(false);
    expect(h.failure("a", 1300)).toBe(false);
  });
});
