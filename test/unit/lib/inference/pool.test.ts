import { Pool } from "../../../../lib/inference/pool";

describe("Pool", () => {
  test("hands out items, then queues waiters first come first served", async () => {
    const pool = new Pool(["s1", "s2"]);
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect([a, b]).toEqual(["s1", "s2"]);
    const order: string[] = [];
    const c = pool.acquire().then((s) => order.push(`c:${s}`));
    const d = pool.acquire().then((s) => order.push(`d:${s}`));
    expect(pool.waiting).toBe(2);
    pool.release(b);
    pool.release(a);
    await Promise.all([c, d]);
    expect(order).toEqual(["c:s2", "d:s1"]);
    expect(pool.inUse).toBe(2);
  });

  test("free items are reused last-in first-out", async () => {
    const pool = new Pool(["s1", "s2", "s3"]);
    const a = await pool.acquire();
    pool.release(a);
    expect(await pool.acquire()).toBe("s1");
    const b = await pool.acquire();
    pool.release("s1");
    pool.release(b);
    expect(await pool.acquire()).toBe(b);
  });

  test("a conversation gets back its item; a new one takes an unused item, else the longest-idle one", async () => {
    const pool = new Pool(["s1", "s2", "s3"]);
    const a = await pool.acquire(undefined, "conv-a");
    const b = await pool.acquire(undefined, "conv-b");
    expect([a, b]).toEqual(["s1", "s2"]);
    pool.release(a, "conv-a");
    pool.release(b, "conv-b");
    expect(await pool.acquire(undefined, "conv-a")).toBe(a);
    pool.release(a, "conv-a");
    // s3 holds no conversation: a new one takes it and leaves a's and b's caches alone
    expect(await pool.acquire(undefined, "conv-c")).toBe("s3");
    pool.release("s3", "conv-c");
    // every item holds one now: the one freed longest ago (b's) is given up
    expect(await pool.acquire(undefined, "conv-d")).toBe(b);
    pool.release(b, "conv-d");
    expect(await pool.acquire(undefined, "conv-b")).toBe(a);
  });

  test("without a key, free items are still reused last-in first-out", async () => {
    const pool = new Pool(["s1", "s2"]);
    const x = await pool.acquire(undefined, "k");
    pool.release(x, "k");
    expect(await pool.acquire()).toBe(x);
  });

  test("an aborted waiter leaves the queue and does not take an item", async () => {
    const pool = new Pool([1]);
    const held = await pool.acquire();
    const ac = new AbortController();
    const aborted = pool.acquire(ac.signal);
    const next = pool.acquire();
    ac.abort(new Error("client left"));
    await expect(aborted).rejects.toThrow("client left");
    expect(pool.waiting).toBe(1);
    pool.release(held);
    await expect(next).resolves.toBe(1);
  });

  test("an already aborted signal fails at once", async () => {
    const pool = new Pool([1]);
    const ac = new AbortController();
    ac.abort(new Error("gone"));
    await expect(pool.acquire(ac.signal)).rejects.toThrow("gone");
    expect(pool.inUse).toBe(0);
  });
});
