import { Errors } from "moleculer";
import { NodeHealth } from "../../lib/cluster/node-health";
import { isRetryable } from "../../lib/routing/retry";
import { apiError, badRequest, modelNotFound } from "../../lib/openai/errors";

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
