import { WaitQueue } from "../../../../lib/routing/wait-queue";
import { toOpenAIError } from "../../../../lib/openai/errors";

describe("WaitQueue", () => {
  test("lets waiters go first come first served, as room appears", async () => {
    const q = new WaitQueue<string>(10, 60_000);
    const order: string[] = [];
    const waits = ["a", "b", "c"].map((x) => q.wait(x).then(() => order.push(x)));
    let room = 2;
    q.release(() => room-- > 0);
    await Promise.all(waits.slice(0, 2));
    expect(order).toEqual(["a", "b"]);
    expect(q.length).toBe(1);
    q.release(() => true);
    await waits[2];
    expect(order).toEqual(["a", "b", "c"]);
  });

  test("a waiter for another model can pass one that must still wait", async () => {
    const q = new WaitQueue<string>(10, 60_000);
    const gone: string[] = [];
    q.wait("busy-model").then(() => gone.push("busy"));
    const free = q.wait("free-model").then(() => gone.push("free"));
    q.release((m) => m === "free-model");
    await free;
    expect(gone).toEqual(["free"]);
    expect(q.length).toBe(1);
    q.release(() => true);
  });

  test("past the limit: 503 queue_full at once, with Retry-After", async () => {
    const q = new WaitQueue<string>(1, 60_000);
    const first = q.wait("a");
    const err = await q.wait("b").catch((e) => e);
    expect(toOpenAIError(err)).toMatchObject({ status: 503, retryAfter: 1, body: { error: { code: "queue_full" } } });
    q.release(() => true);
    await first;
  });

  test("after the timeout: 503 queue_timeout, and the waiter leaves", async () => {
    const q = new WaitQueue<string>(5, 20);
    const err = await q.wait("a").catch((e) => e);
    expect(toOpenAIError(err)).toMatchObject({ status: 503, body: { error: { code: "queue_timeout" } } });
    expect(q.length).toBe(0);
  });
});
