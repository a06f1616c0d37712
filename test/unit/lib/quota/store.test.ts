import type { Subject } from "../../../../lib/quota/decide";
import { takeTokens } from "../../../../lib/quota/decide";
import { type Limits, NO_LIMITS } from "../../../../lib/quota/limits";
import { LEASE_MS, MemoryQuotaStore } from "../../../../lib/quota/store";
import { MINUTE_MS } from "../../../../lib/quota/windows";

const T0 = Date.parse("2024-03-31T23:58:10Z"); // 10 s into a minute, the month's last day
const subject = (id: string, limits: Partial<Limits> = {}): Subject => ({
  id,
  kind: id.startsWith("key:") ? "key" : "user",
  limits: { ...NO_LIMITS, ...limits },
});

describe("MemoryQuotaStore", () => {
  test("begin counts requests of the minute only for a subject whose requests are limited", () => {
    const store = new MemoryQuotaStore();
    const limited = subject("key:a", { rpm: 10 });
    const free = subject("user:u", { tpm: 100 });
    for (let i = 1; i <= 3; i++) {
      const [a, u] = store.begin([limited, free], `l${i}`, T0 + i);
      expect(a.requests).toBe(i);
      expect(a.requestsResetAt).toBe(T0 - 10_000 + MINUTE_MS);
      expect(u.requests).toBe(0);
      expect(u.concurrent).toBe(0);
    }
    // a new minute starts over
    const [next] = store.begin([limited], "l4", T0 + 50_000);
    expect(next.requests).toBe(1);
    expect(next.requestsResetAt).toBe(T0 - 10_000 + 2 * MINUTE_MS);
    // the count was not kept for the subject while it had no limit: a limit set later starts from this one
    const [later] = store.begin([subject("user:u", { rpm: 5 })], "l5", T0 + 50_000);
    expect(later.requests).toBe(1);
  });

  test("requests at once: each begin holds a slot until release, or until its lease runs out", () => {
    const store = new MemoryQuotaStore();
    const s = subject("key:c", { maxConcurrent: 2 });
    expect(store.begin([s], "a", T0)[0].concurrent).toBe(1);
    expect(store.begin([s], "b", T0 + 1000)[0].concurrent).toBe(2);
    expect(store.begin([s], "c", T0 + 2000)[0].concurrent).toBe(3);
    store.release([s], "c");
    store.release([s], "b");
    expect(store.begin([s], "d", T0 + 3000)[0].concurrent).toBe(2); // a and d
    store.release([s], "d");
    // "a" was never released: it goes when its lease runs out, LEASE_MS after it began
    expect(store.begin([s], "e", T0 + LEASE_MS - 1)[0].concurrent).toBe(2);
    store.release([s], "e");
    expect(store.begin([s], "f", T0 + LEASE_MS)[0].concurrent).toBe(1);
    // releasing what is not held, or a subject never seen, is harmless
    store.release([s, subject("key:never")], "nope");
  });

  test("hold keeps a slot another LEASE_MS; a slot not held runs out", () => {
    const store = new MemoryQuotaStore();
    const s = subject("key:h", { maxConcurrent: 5 });
    store.begin([s], "held", T0);
    store.begin([s], "dropped", T0);
    store.hold([s], "held", T0 + 50_000);
    expect(store.begin([s], "probe1", T0 + LEASE_MS + 1)[0].concurrent).toBe(2); // held and probe1
    store.hold([s], "held", T0 + 100_000);
    expect(store.begin([s], "probe2", T0 + 50_000 + LEASE_MS + 10)[0].concurrent).toBe(3); // held, probe1, probe2
    expect(store.begin([s], "probe3", T0 + 100_000 + LEASE_MS)[0].concurrent).toBe(2); // probe2, probe3
    // a lease that was released is not brought back by a hold
    store.release([s], "probe3");
    store.hold([s], "probe3", T0 + 100_000 + LEASE_MS);
    expect(store.begin([s], "probe4", T0 + 100_000 + LEASE_MS)[0].concurrent).toBe(2);
  });

  test("no slot is taken for a subject whose requests at once are not limited", () => {
    const store = new MemoryQuotaStore();
    const s = subject("key:n", { rpm: 100 });
    for (let i = 0; i < 5; i++) expect(store.begin([s], `x${i}`, T0)[0].concurrent).toBe(0);
    expect(store.begin([subject("key:n", { maxConcurrent: 1 })], "y", T0)[0].concurrent).toBe(1);
  });

  test("consume adds to the day and month, and moves the bucket as takeTokens does", () => {
    const store = new MemoryQuotaStore();
    const k = subject("key:t", { tpm: 600 });
    const u = subject("user:t");
    store.consume([k, u], 100, T0);
    store.consume([k, u], 0, T0); // nothing
    store.consume([k, u], -5, T0); // nothing
    let [rk, ru] = store.begin([k, u], "r", T0);
    expect(rk).toMatchObject({ day: 100, month: 100, tat: takeTokens(600, 0, 100, T0) });
    expect(ru).toMatchObject({ day: 100, month: 100, tat: 0 }); // no bucket without a tpm limit
    store.consume([k, u], 50, T0 + 1000);
    [rk, ru] = store.begin([k, u], "r", T0 + 1000);
    expect(rk).toMatchObject({
      day: 150,
      month: 150,
      tat: takeTokens(600, takeTokens(600, 0, 100, T0), 50, T0 + 1000),
    });
    expect(ru).toMatchObject({ day: 150, month: 150 });
  });

  test("a new UTC day starts the day's count over; a new month the month's", () => {
    const store = new MemoryQuotaStore();
    const s = subject("key:w");
    store.consume([s], 100, Date.parse("2024-03-30T12:00:00Z"));
    store.consume([s], 10, Date.parse("2024-03-31T23:59:59.999Z"));
    expect(store.begin([s], "r", Date.parse("2024-03-31T23:59:59.999Z"))[0]).toMatchObject({ day: 10, month: 110 });
    // midnight: a new day and a new month
    expect(store.begin([s], "r", Date.parse("2024-04-01T00:00:00Z"))[0]).toMatchObject({ day: 0, month: 0 });
    store.consume([s], 7, Date.parse("2024-04-01T08:00:00Z"));
    expect(store.begin([s], "r", Date.parse("2024-04-02T00:00:00Z"))[0]).toMatchObject({ day: 0, month: 7 });
    // and over the year's end
    store.consume([s], 3, Date.parse("2024-12-31T23:00:00Z"));
    expect(store.begin([s], "r", Date.parse("2024-12-31T23:30:00Z"))[0]).toMatchObject({ day: 3, month: 3 });
    expect(store.begin([s], "r", Date.parse("2025-01-01T00:00:01Z"))[0]).toMatchObject({ day: 0, month: 0 });
  });

  test("dirty hands over the budget counts changed since the last call; restore reads them back", () => {
    const store = new MemoryQuotaStore();
    const a = subject("key:d");
    const b = subject("user:d");
    expect(store.dirty()).toEqual([]);
    store.begin([a, b], "r", T0); // reading is no change
    expect(store.dirty()).toEqual([]);
    store.consume([a, b], 40, T0);
    store.consume([a], 2, T0 + 1);
    const day = Date.parse("2024-03-31T00:00:00Z");
    const month = Date.parse("2024-03-01T00:00:00Z");
    const counts = store.dirty();
    expect(counts).toEqual(
      expect.arrayContaining([
        { subject: "key:d", period: "day", start: day, used: 42 },
        { subject: "key:d", period: "month", start: month, used: 42 },
        { subject: "user:d", period: "day", start: day, used: 40 },
        { subject: "user:d", period: "month", start: month, used: 40 },
      ]),
    );
    expect(counts).toHaveLength(4);
    expect(store.dirty()).toEqual([]); // handed over once

    // a restart: a fresh store reads them back
    const after = new MemoryQuotaStore();
    after.restore(counts, T0 + 5000);
    expect(after.begin([a, b], "r", T0 + 5000).map((r) => [r.day, r.month])).toEqual([
      [42, 42],
      [40, 40],
    ]);
    expect(after.dirty()).toEqual([]); // restoring is no change to keep
    // a count that grew meanwhile is not lowered by an older one
    after.consume([a], 100, T0 + 6000);
    after.restore(counts, T0 + 6000);
    expect(after.begin([a], "r", T0 + 6000)[0]).toMatchObject({ day: 142, month: 142 });
  });

  test("restore drops the counts of a past day (and a past month)", () => {
    const store = new MemoryQuotaStore();
    const s = subject("key:r");
    store.consume([s], 500, T0); // March 31st
    const counts = store.dirty();
    const nextDay = Date.parse("2024-04-01T10:00:00Z"); // also a new month
    const fresh = new MemoryQuotaStore();
    fresh.restore(counts, nextDay);
    expect(fresh.begin([s], "r", nextDay)[0]).toMatchObject({ day: 0, month: 0 });

    // the next day of the same month: the month's count stays, the day's goes
    const midMonth = Date.parse("2024-03-10T12:00:00Z");
    const m = new MemoryQuotaStore();
    m.consume([s], 77, midMonth);
    const kept = m.dirty();
    const sameMonth = new MemoryQuotaStore();
    sameMonth.restore(kept, midMonth + 86_400_000);
    expect(sameMonth.begin([s], "r", midMonth + 86_400_000)[0]).toMatchObject({ day: 0, month: 77 });
  });
});
