import { Cancel } from "../../../../lib/upstreams/cancel";

describe("Cancel", () => {
  test("abort runs each listener still registered once, with the reason kept", () => {
    const c = new Cancel();
    const calls: string[] = [];
    const a = () => calls.push("a");
    const b = () => calls.push("b");
    c.addEventListener("abort", a);
    c.addEventListener("abort", b);
    c.removeEventListener("abort", a);
    expect(c.aborted).toBe(false);
    const why = new DOMException("timed out", "TimeoutError");
    c.abort(why);
    c.abort(new Error("again"));
    expect(calls).toEqual(["b"]);
    expect(c.aborted).toBe(true);
    expect(c.reason).toBe(why);
  });

  test("without a reason it is an AbortError, as an AbortController's", () => {
    const c = new Cancel();
    c.abort();
    expect((c.reason as Error).name).toBe("AbortError");
  });

  test("its signal follows it, whether made before or after the abort", () => {
    const before = new Cancel();
    const signal = before.signal;
    expect(signal.aborted).toBe(false);
    before.abort("r1");
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe("r1");
    const after = new Cancel();
    after.abort("r2");
    expect(after.signal.aborted).toBe(true);
    expect(after.signal.reason).toBe("r2");
    expect(after.signal).toBe(after.signal);
  });
});
