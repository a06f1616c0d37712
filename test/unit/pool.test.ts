import { Pool } from "../../lib/inference/pool";

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

  test("a conversation gets back the free item it last used; others get the LIFO head", async () => {
    const pool = new Pool(["s1", "s2", "s3"]);
    const [a, b] = [await pool.acquire(undefined, "conv-a"), await pool.acquire(undefined, "conv-b")];
    pool.release(a, "conv-a");
    pool.release(b, "conv-b");
    expect(await pool.acquire(undefined, "conv-a")).toBe(a);
    // an unknown conversation takes the most recently freed item
    expect(await pool.acquire(undefined, "conv-c")).toBe(b);
    pool.release(b, "conv-c");
    // conv-b's cache was overwritten by conv-c: it no longer prefers b
    expect(await pool.acquire(undefined, "conv-b")).toBe(b);
    pool.release(b);
    pool.release(a);
    expect(await pool.acquire(undefined, "conv-a")).toBe(a);
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
