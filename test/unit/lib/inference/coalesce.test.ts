/** Stream chunks in fewer transporter messages (lib/inference/coalesce.ts). */
import { PassThrough } from "node:stream";
import { Coalescer, flattenBatches } from "../../../../lib/inference/coalesce";

/** The items written to the stream, as they come. */
function sink() {
  const out = new PassThrough({ objectMode: true });
  const items: unknown[] = [];
  out.on("data", (x) => items.push(x));
  return { out, items };
}

async function drain(it: AsyncIterator<unknown>): Promise<unknown[]> {
  const xs: unknown[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) xs.push(r.value);
  return xs;
}

async function* items(...xs: unknown[]) {
  yield* xs;
}

describe("Coalescer", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test("the first chunk leaves at once; the next ones wait for the window and leave as one batch", () => {
    const { out, items } = sink();
    const c = new Coalescer(out, { windowMs: 5, maxChunks: 16 });
    c.push({ n: 1 });
    c.push({ n: 2 });
    c.push({ n: 3 });
    jest.advanceTimersByTime(0);
    expect(items).toEqual([{ n: 1 }]);
    jest.advanceTimersByTime(5);
    expect(items).toEqual([{ n: 1 }, [{ n: 2 }, { n: 3 }]]);
  });

  test("a batch that reaches maxChunks leaves without waiting; a lone chunk leaves as itself", () => {
    const { out, items } = sink();
    const c = new Coalescer(out, { windowMs: 5, maxChunks: 3 });
    for (let n = 1; n <= 5; n++) c.push(n);
    jest.advanceTimersByTime(0);
    expect(items).toEqual([1, [2, 3, 4]]);
    jest.advanceTimersByTime(5);
    expect(items).toEqual([1, [2, 3, 4], 5]);
  });

  test("end sends what is gathered before the end; fail before the error", async () => {
    const ended = sink();
    const c = new Coalescer(ended.out, { windowMs: 50, maxChunks: 16 });
    c.push("a");
    c.push("b");
    c.push("c");
    c.end();
    jest.useRealTimers();
    await new Promise((r) => ended.out.once("end", r));
    expect(ended.items).toEqual(["a", ["b", "c"]]);

    // a reader that reads as chunks come, as the transporter does
    const failed = sink();
    const error = new Promise((r) => failed.out.once("error", r));
    const f = new Coalescer(failed.out, { windowMs: 50, maxChunks: 16 });
    f.push("a");
    f.push("b");
    f.push("c");
    f.fail(new Error("engine broke"));
    expect(String(await error)).toMatch("engine broke");
    expect(failed.items).toEqual(["a", ["b", "c"]]);
  });

  test("windowMs 0 sends every chunk on its own", () => {
    const { out, items } = sink();
    const c = new Coalescer(out, { windowMs: 0, maxChunks: 16 });
    c.push(1);
    c.push(2);
    expect(items).toEqual([1, 2]);
  });

  test("nothing is written to a stream destroyed meanwhile (a cancelled request)", () => {
    const { out, items } = sink();
    const c = new Coalescer(out, { windowMs: 5, maxChunks: 16 });
    c.push(1);
    c.push(2);
    out.destroy();
    jest.advanceTimersByTime(5);
    c.push(3);
    expect(items).toEqual([1]);
  });
});

describe("flattenBatches", () => {
  test("reads batches as their chunks, in order, and passes chunks through", async () => {
    expect(await drain(flattenBatches(items({ a: 1 }, [{ b: 2 }, { c: 3 }], { d: 4 }, [{ e: 5 }])))).toEqual([
      { a: 1 },
      { b: 2 },
      { c: 3 },
      { d: 4 },
      { e: 5 },
    ]);
  });

  test("an empty batch yields nothing; the source's error comes through", async () => {
    expect(await drain(flattenBatches(items([], "x", [])))).toEqual(["x"]);
    async function* broken() {
      yield [1, 2];
      throw new Error("node gone");
    }
    const it = flattenBatches(broken());
    expect((await it.next()).value).toBe(1);
    expect((await it.next()).value).toBe(2);
    await expect(it.next()).rejects.toThrow("node gone");
  });

  test("return() reaches the source (the relay gives up on a client that left)", async () => {
    let returned = false;
    const source: AsyncIterator<unknown> = {
      next: async () => ({ done: false, value: [1, 2] }),
      return: async () => ((returned = true), { done: true, value: undefined }),
    };
    const it = flattenBatches(source);
    await it.next();
    await it.return!();
    expect(returned).toBe(true);
  });
});
