import {
  dayStart,
  MINUTE_MS,
  minuteStart,
  monthStart,
  nextDay,
  nextMonth,
  resetText,
} from "../../../../lib/quota/windows";

const at = (iso: string) => Date.parse(iso);

test("UTC days: the start and the next", () => {
  expect(dayStart(at("2024-03-15T13:45:12.345Z"))).toBe(at("2024-03-15T00:00:00Z"));
  expect(dayStart(at("2024-03-15T00:00:00Z"))).toBe(at("2024-03-15T00:00:00Z"));
  expect(dayStart(at("2024-03-15T23:59:59.999Z"))).toBe(at("2024-03-15T00:00:00Z"));
  expect(nextDay(at("2024-03-15T23:59:59.999Z"))).toBe(at("2024-03-16T00:00:00Z"));
  // month and year rollover, and a leap day
  expect(nextDay(at("2024-01-31T12:00:00Z"))).toBe(at("2024-02-01T00:00:00Z"));
  expect(nextDay(at("2024-02-28T12:00:00Z"))).toBe(at("2024-02-29T00:00:00Z"));
  expect(nextDay(at("2023-02-28T12:00:00Z"))).toBe(at("2023-03-01T00:00:00Z"));
  expect(nextDay(at("2024-12-31T23:00:00Z"))).toBe(at("2025-01-01T00:00:00Z"));
});

test("UTC months: the start and the next, over the year's end", () => {
  expect(monthStart(at("2024-03-15T13:45:12Z"))).toBe(at("2024-03-01T00:00:00Z"));
  expect(monthStart(at("2024-03-01T00:00:00Z"))).toBe(at("2024-03-01T00:00:00Z"));
  expect(monthStart(at("2024-02-29T23:59:59.999Z"))).toBe(at("2024-02-01T00:00:00Z"));
  expect(nextMonth(at("2024-01-31T23:59:59Z"))).toBe(at("2024-02-01T00:00:00Z"));
  expect(nextMonth(at("2024-02-01T00:00:00Z"))).toBe(at("2024-03-01T00:00:00Z"));
  expect(nextMonth(at("2024-12-31T23:59:59.999Z"))).toBe(at("2025-01-01T00:00:00Z"));
  expect(nextMonth(at("2024-12-01T00:00:00Z"))).toBe(at("2025-01-01T00:00:00Z"));
});

test("minutes start on the minute", () => {
  expect(minuteStart(at("2024-03-15T13:45:12.345Z"))).toBe(at("2024-03-15T13:45:00Z"));
  expect(minuteStart(at("2024-03-15T13:45:00Z"))).toBe(at("2024-03-15T13:45:00Z"));
  expect(MINUTE_MS).toBe(60_000);
});

test("resetText writes waits as OpenAI's x-ratelimit-reset headers do", () => {
  expect(resetText(20)).toBe("20ms");
  expect(resetText(0)).toBe("0ms");
  expect(resetText(-5)).toBe("0ms");
  expect(resetText(19.2)).toBe("20ms");
  expect(resetText(999)).toBe("999ms");
  expect(resetText(999.5)).toBe("1s");
  expect(resetText(1000)).toBe("1s");
  expect(resetText(1001)).toBe("2s");
  expect(resetText(59_000)).toBe("59s");
  expect(resetText(60_000)).toBe("1m0s");
  expect(resetText(360_000)).toBe("6m0s");
  expect(resetText(61_500)).toBe("1m2s");
  expect(resetText(3_600_000)).toBe("1h0m0s");
  expect(resetText(3_723_000)).toBe("1h2m3s");
  expect(resetText(26 * 3_600_000)).toBe("26h0m0s");
});
