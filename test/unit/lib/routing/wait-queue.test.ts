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

describe("WaitQueue: a waiter's own timeout", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test("a shorter timeout for one item: it leaves after it, the others stay", async () => {
    const q = new WaitQueue<string>(10, 60_000);
    const short = q.wait("short", 2_000).catch((e) => e);
    let longDone = false;
    const long = q.wait("long").then(() => (longDone = true));
    jest.advanceTimersByTime(1_999);
    await Promise.resolve();
    expect(q.length).toBe(2);
    jest.advanceTimersByTime(1);
    const err = await short;
    expect(toOpenAIError(err)).toMatchObject({
      status: 503,
      retryAfter: 1,
      body: { error: { code: "queue_timeout", message: expect.stringContaining("within 2 s") } },
    });
    expect(q.length).toBe(1);
    expect(q.count((x) => x === "long")).toBe(1);
    expect(longDone).toBe(false);
    q.release(() => true);
    await long;
    expect(longDone).toBe(true);
  });

  test("a timeout longer than the queue's is cut to the queue's", async () => {
    const q = new WaitQueue<string>(10, 5_000);
    let settled = false;
    const w = q
      .wait("a", 60_000)
      .catch((e) => e)
      .finally(() => (settled = true));
    jest.advanceTimersByTime(4_999);
    await Promise.resolve();
    expect(settled).toBe(false);
    jest.advanceTimersByTime(1);
    const err = await w;
    expect(toOpenAIError(err)).toMatchObject({
      status: 503,
      body: { error: { code: "queue_timeout", message: expect.stringContaining("within 5 s") } },
    });
    expect(q.length).toBe(0);
  });

  test("without a timeout of its own, the queue's applies", async () => {
    const q = new WaitQueue<string>(10, 3_000);
    const w = q.wait("a").catch((e) => e);
    jest.advanceTimersByTime(2_999);
    expect(q.length).toBe(1);
    jest.advanceTimersByTime(1);
    expect(toOpenAIError(await w).body.error.code).toBe("queue_timeout");
  });

  test("released before its timeout: it resolves and the timer is cleared", async () => {
    const q = new WaitQueue<string>(10, 60_000);
    const w = q.wait("a", 1_000);
    q.release(() => true);
    await expect(w).resolves.toMatchObject({ ahead: 0 });
    expect(jest.getTimerCount()).toBe(0);
  });

  test("the limit applies whatever the item's timeout", async () => {
    const q = new WaitQueue<string>(1, 60_000);
    const first = q.wait("a", 10);
    const err = await q.wait("b", 10).catch((e) => e);
    expect(toOpenAIError(err).body.error.code).toBe("queue_full");
    q.release(() => true);
    await first;
  });
});

describe("WaitQueue: priorities and fairness across keys", () => {
  /** Lets one waiter go per call (one slot freed), recording the order. */
  function drain(q: WaitQueue<string>, n: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      let let1 = true;
      q.release((item) => {
        if (!let1) return false;
        let1 = false;
        out.push(item);
        return true;
      });
    }
    return out;
  }

  test("higher priority goes first; within one, first come first served for one key", async () => {
    const q = new WaitQueue<string>(100, 60_000);
    const all = [
      q.wait("batch-1", undefined, { priority: 200, key: "a" }),
      q.wait("batch-2", undefined, { priority: 200, key: "a" }),
      q.wait("normal-1", undefined, { key: "b" }),
      q.wait("interactive-1", undefined, { priority: 800, key: "c" }),
    ];
    expect(drain(q, 4)).toEqual(["interactive-1", "normal-1", "batch-1", "batch-2"]);
    await Promise.all(all);
  });

  test("one key's 200 queued requests do not hold back another key's one", async () => {
    const q = new WaitQueue<string>(1000, 60_000);
    const waits = Array.from({ length: 200 }, (_, i) => q.wait(`a${i}`, undefined, { key: "a" }));
    const b = q.wait("b0", undefined, { key: "b" });
    const order = drain(q, 201);
    expect(order.indexOf("b0")).toBeLessThanOrEqual(2);
    // key a's own requests keep their order
    expect(order.filter((x) => x.startsWith("a"))).toEqual(Array.from({ length: 200 }, (_, i) => `a${i}`));
    await Promise.all([...waits, b]);
  });

  test("two busy keys take turns; a key that comes back later does not jump the queue with old credit", async () => {
    const q = new WaitQueue<string>(100, 60_000);
    const waits = ["a1", "a2", "a3"].map((x) => q.wait(x, undefined, { key: "a" }));
    waits.push(...["b1", "b2", "b3"].map((x) => q.wait(x, undefined, { key: "b" })));
    expect(drain(q, 4)).toEqual(["a1", "b1", "a2", "b2"]);
    // c arrives now: it goes after what is already due (a3, b3 are at the same turn), not before all of it
    waits.push(q.wait("c1", undefined, { key: "c" }));
    expect(drain(q, 3)).toEqual(["a3", "b3", "c1"]);
    await Promise.all(waits);
  });

  test("a released waiter learns how many stood ahead of it when it came, and how long it waited", async () => {
    const q = new WaitQueue<string>(100, 60_000);
    const first = q.wait("x", undefined, { key: "a" });
    const second = q.wait("y", undefined, { key: "a" });
    const urgent = q.wait("z", undefined, { priority: 900, key: "b" });
    drain(q, 3);
    expect((await first).ahead).toBe(0);
    expect((await second).ahead).toBe(1);
    expect((await urgent).ahead).toBe(0);
    expect((await second).waitedMs).toBeGreaterThanOrEqual(0);
  });
});
