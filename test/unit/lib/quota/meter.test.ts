import { Meter } from "../../../../lib/quota/meter";

const FLUSH_MS = 1000;
const HOLD_MS = 20_000;

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

function meter(report: (tokens: number, ended: boolean) => Promise<void> = () => Promise.resolve()) {
  const calls: Array<[number, boolean]> = [];
  const errors: Error[] = [];
  const m = new Meter(
    (tokens, ended) => {
      calls.push([tokens, ended]);
      return report(tokens, ended);
    },
    (err) => errors.push(err),
  );
  return { m, calls, errors };
}

describe("Meter", () => {
  test("tokens added are batched and reported within FLUSH_MS", () => {
    const { m, calls } = meter();
    m.add(3);
    m.add(4);
    jest.advanceTimersByTime(FLUSH_MS - 1);
    expect(calls).toEqual([]);
    m.add(5);
    jest.advanceTimersByTime(1);
    expect(calls).toEqual([[12, false]]);
    // nothing more until more is added
    jest.advanceTimersByTime(5 * FLUSH_MS);
    expect(calls).toEqual([[12, false]]);
    m.add(1);
    jest.advanceTimersByTime(FLUSH_MS);
    expect(calls).toEqual([
      [12, false],
      [1, false],
    ]);
    m.end(null);
  });

  test("nothing and negatives are not added", () => {
    const { m, calls } = meter();
    m.add(0);
    m.add(-4);
    jest.advanceTimersByTime(FLUSH_MS);
    expect(calls).toEqual([]);
    m.end(null);
    expect(calls).toEqual([[0, true]]);
  });

  test("end(total) reports the total less what was already counted, with the end, once", () => {
    const { m, calls } = meter();
    m.add(10);
    jest.advanceTimersByTime(FLUSH_MS); // 10 reported
    m.add(5); // pending
    m.end(40);
    expect(calls).toEqual([
      [10, false],
      [30, true],
    ]);
    expect(calls.reduce((sum, [t]) => sum + t, 0)).toBe(40);
    // once: a second end, later adds and timers report nothing
    m.end(100);
    m.add(7);
    jest.advanceTimersByTime(2 * HOLD_MS);
    expect(calls).toHaveLength(2);
  });

  test("end(total) below what was counted reports only what is pending", () => {
    const { m, calls } = meter();
    m.add(10);
    jest.advanceTimersByTime(FLUSH_MS);
    m.add(6);
    m.end(12);
    expect(calls).toEqual([
      [10, false],
      [6, true],
    ]);
  });

  test("end(null) reports only the pending tokens, at once, and no flush follows", () => {
    const { m, calls } = meter();
    m.add(8);
    m.end(null);
    expect(calls).toEqual([[8, true]]);
    jest.advanceTimersByTime(HOLD_MS * 3);
    expect(calls).toEqual([[8, true]]);
  });

  test("while nothing is reported, the slot is held every HOLD_MS", () => {
    const { m, calls } = meter();
    jest.advanceTimersByTime(HOLD_MS - 1);
    expect(calls).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(calls).toEqual([[0, false]]);
    jest.advanceTimersByTime(HOLD_MS);
    expect(calls).toEqual([
      [0, false],
      [0, false],
    ]);
    m.end(0);
    jest.advanceTimersByTime(HOLD_MS);
    expect(calls).toEqual([
      [0, false],
      [0, false],
      [0, true],
    ]);
  });

  test("a report that fails calls onError", async () => {
    const { m, errors } = meter(() => Promise.reject(new Error("key service gone")));
    m.add(2);
    await jest.advanceTimersByTimeAsync(FLUSH_MS);
    expect(errors.map((e) => e.message)).toEqual(["key service gone"]);
    m.end(null);
    await jest.advanceTimersByTimeAsync(0); // the rejection's handler runs
    expect(errors).toHaveLength(2);
  });

  test("claimed starts false and can be taken", () => {
    const { m } = meter();
    expect(m.claimed).toBe(false);
    m.claimed = true;
    expect(m.claimed).toBe(true);
    m.end(null);
  });
});
