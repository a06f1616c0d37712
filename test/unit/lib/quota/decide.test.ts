import {
  decide,
  type Reading,
  type Subject,
  takeTokens,
  tokenInterval,
  tokensLeft,
} from "../../../../lib/quota/decide";
import { type Limits, NO_LIMITS } from "../../../../lib/quota/limits";
import { MINUTE_MS } from "../../../../lib/quota/windows";

const NOW = Date.parse("2024-03-15T13:45:20Z"); // 20 s into a minute; 10h14m40s before midnight UTC
const MINUTE_END = Date.parse("2024-03-15T13:46:00Z");

const key = (limits: Partial<Limits>): Subject => ({ id: "key:k1", kind: "key", limits: { ...NO_LIMITS, ...limits } });
const user = (limits: Partial<Limits>): Subject => ({
  id: "user:u1",
  kind: "user",
  limits: { ...NO_LIMITS, ...limits },
});
const reading = (r: Partial<Reading> = {}): Reading => ({
  requests: 0,
  requestsResetAt: MINUTE_END,
  tat: 0,
  day: 0,
  month: 0,
  concurrent: 0,
  ...r,
});

describe("the tokens-per-minute bucket (GCRA)", () => {
  test("a bucket is full until tokens are taken, then refills one token per interval", () => {
    const tpm = 600; // a token every 100 ms
    expect(tokenInterval(tpm)).toBe(100);
    expect(tokensLeft(tpm, 0, NOW)).toBe(600);
    expect(tokensLeft(tpm, NOW - 5000, NOW)).toBe(600); // full since long ago
    let tat = takeTokens(tpm, 0, 100, NOW);
    expect(tat).toBe(NOW + 100 * 100);
    expect(tokensLeft(tpm, tat, NOW)).toBe(500);
    expect(tokensLeft(tpm, tat, NOW + 1000)).toBe(510);
    expect(tokensLeft(tpm, tat, NOW + 99)).toBe(500);
    expect(tokensLeft(tpm, tat, NOW + 100)).toBe(501);
    expect(tokensLeft(tpm, tat, tat)).toBe(600);
    // taking more adds to the debt from the later of tat and now
    tat = takeTokens(tpm, tat, 500, NOW);
    expect(tat).toBe(NOW + MINUTE_MS);
    expect(tokensLeft(tpm, tat, NOW)).toBe(0);
    expect(takeTokens(tpm, NOW - 10_000, 1, NOW)).toBe(NOW + 100);
  });

  test("a bucket may go into debt: none left until the debt is paid back", () => {
    const tpm = 60;
    const tat = takeTokens(tpm, 0, 120, NOW); // two minutes' worth in one answer
    expect(tat).toBe(NOW + 2 * MINUTE_MS);
    expect(tokensLeft(tpm, tat, NOW)).toBe(0);
    expect(tokensLeft(tpm, tat, NOW + MINUTE_MS)).toBe(0);
    expect(tokensLeft(tpm, tat, NOW + MINUTE_MS + 999)).toBe(0);
    expect(tokensLeft(tpm, tat, NOW + MINUTE_MS + 1000)).toBe(1);
    expect(tokensLeft(tpm, tat, NOW + 2 * MINUTE_MS)).toBe(60);
  });
});

describe("decide", () => {
  test("no limits: admitted, no headers", () => {
    const d = decide([key({}), user({})], [reading({ day: 1e9, month: 1e12 }), reading()], NOW);
    expect(d).toEqual({ refusal: null, headers: {} });
    expect(decide([], [], NOW)).toEqual({ refusal: null, headers: {} });
  });

  test("requests per minute: the request past the limit is refused until the minute ends", () => {
    const s = [key({ rpm: 3 })];
    const ok = decide(s, [reading({ requests: 3 })], NOW);
    expect(ok.refusal).toBeNull();
    expect(ok.headers).toEqual({
      "x-ratelimit-limit-requests": "3",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "40s",
    });
    const no = decide(s, [reading({ requests: 4 })], NOW);
    expect(no.refusal).toEqual({
      code: "rate_limit_exceeded",
      message: "This key is limited to 3 requests per minute.",
      retryAfterSecs: 40,
      retryAfterMs: 40_000,
    });
    expect(no.headers["x-ratelimit-remaining-requests"]).toBe("0");
    // never less than a second
    expect(decide(s, [reading({ requests: 4 })], MINUTE_END - 10).refusal).toMatchObject({
      retryAfterSecs: 1,
      retryAfterMs: 10,
    });
  });

  test("tokens per minute: refused while no token is left, Retry-After the wait until one is back", () => {
    const tpm = 60; // a token a second
    const s = [key({ tpm })];
    const full = decide(s, [reading({ tat: 0 })], NOW);
    expect(full.refusal).toBeNull();
    expect(full.headers).toEqual({
      "x-ratelimit-limit-tokens": "60",
      "x-ratelimit-remaining-tokens": "60",
      "x-ratelimit-reset-tokens": "0ms",
    });
    // one token left: admitted
    const oneLeft = decide(s, [reading({ tat: NOW + MINUTE_MS - 1000 })], NOW);
    expect(oneLeft.refusal).toBeNull();
    expect(oneLeft.headers["x-ratelimit-remaining-tokens"]).toBe("1");
    expect(oneLeft.headers["x-ratelimit-reset-tokens"]).toBe("59s");
    // empty: a token is back in a second
    const empty = decide(s, [reading({ tat: takeTokens(tpm, 0, 60, NOW) })], NOW);
    expect(empty.refusal).toEqual({
      code: "rate_limit_exceeded",
      message: "This key is limited to 60 tokens per minute.",
      retryAfterSecs: 1,
      retryAfterMs: 1000,
    });
    expect(empty.headers["x-ratelimit-remaining-tokens"]).toBe("0");
    expect(empty.headers["x-ratelimit-reset-tokens"]).toBe("1m0s");
    // in debt by 30 tokens past empty: 31 s until one is back
    const debt = decide(s, [reading({ tat: takeTokens(tpm, 0, 90, NOW) })], NOW);
    expect(debt.refusal).toMatchObject({ retryAfterSecs: 31, retryAfterMs: 31_000 });
    // and then it is admitted
    expect(decide(s, [reading({ tat: takeTokens(tpm, 0, 90, NOW) })], NOW + 31_000).refusal).toBeNull();
    expect(decide(s, [reading({ tat: takeTokens(tpm, 0, 90, NOW) })], NOW + 30_999).refusal).not.toBeNull();
  });

  test("a fractional token interval still gives whole seconds and OpenAI's reset format", () => {
    const tpm = 7; // a token every 8571.43 ms
    const tat = takeTokens(tpm, 0, 7, NOW);
    const d = decide([key({ tpm })], [reading({ tat })], NOW);
    expect(d.refusal).toMatchObject({ retryAfterSecs: 9, retryAfterMs: 8572 });
    expect(d.headers["x-ratelimit-reset-tokens"]).toBe("1m0s");
    const nearly = decide([key({ tpm })], [reading({ tat: NOW + 999.4 })], NOW);
    expect(nearly.headers["x-ratelimit-reset-tokens"]).toBe("1s");
  });

  test("a daily budget used up: insufficient_quota until the next UTC midnight", () => {
    const s = [key({ dailyTokens: 1000 })];
    expect(decide(s, [reading({ day: 999 })], NOW).refusal).toBeNull();
    const d = decide(s, [reading({ day: 1000 })], NOW);
    expect(d.refusal).toEqual({
      code: "insufficient_quota",
      message: "This key is out of its daily budget of 1000 tokens; it renews at 00:00 UTC.",
      retryAfterSecs: 10 * 3600 + 14 * 60 + 40,
      retryAfterMs: (10 * 3600 + 14 * 60 + 40) * 1000,
    });
    expect(d.headers).toEqual({
      "x-ratelimit-limit-tokens-day": "1000",
      "x-ratelimit-remaining-tokens-day": "0",
      "x-ratelimit-reset-tokens-day": "10h14m40s",
    });
    // at 23:59:59.5 it is half a second, written as one
    const late = Date.parse("2024-12-31T23:59:59.500Z");
    expect(decide(s, [reading({ day: 5000 })], late).refusal?.retryAfterSecs).toBe(1);
  });

  test("a monthly budget used up: insufficient_quota until the 1st of the next month (UTC), over the year's end", () => {
    const s = [user({ monthlyTokens: 50 })];
    const d = decide(s, [reading({ month: 60 })], NOW);
    expect(d.refusal?.code).toBe("insufficient_quota");
    expect(d.refusal?.message).toBe(
      "This key's user is out of its monthly budget of 50 tokens; it renews on the 1st (UTC).",
    );
    expect(d.refusal?.retryAfterSecs).toBe((Date.parse("2024-04-01T00:00:00Z") - NOW) / 1000);
    expect(d.headers["x-ratelimit-remaining-tokens-month"]).toBe("0");
    expect(d.headers["x-ratelimit-reset-tokens-month"]).toBe("394h14m40s"); // 16 days and 10h14m40s
    const dec = Date.parse("2024-12-31T22:00:00Z");
    expect(decide(s, [reading({ month: 50 })], dec).refusal?.retryAfterSecs).toBe(7200);
  });

  test("requests at once: the one past the limit is refused, retry in a second", () => {
    const s = [key({ maxConcurrent: 2 })];
    const ok = decide(s, [reading({ concurrent: 2 })], NOW);
    expect(ok.refusal).toBeNull();
    expect(ok.headers).toEqual({
      "x-ratelimit-limit-concurrent-requests": "2",
      "x-ratelimit-remaining-concurrent-requests": "0",
    });
    expect(decide(s, [reading({ concurrent: 3 })], NOW).refusal).toEqual({
      code: "rate_limit_exceeded",
      message: "This key is limited to 2 requests at once.",
      retryAfterSecs: 1,
      retryAfterMs: 1000,
    });
  });

  test("budgets win over rates: waiting a minute does not help them", () => {
    const s = [key({ rpm: 1, tpm: 10, maxConcurrent: 1, dailyTokens: 10, monthlyTokens: 100 })];
    const over = reading({ requests: 5, tat: NOW + 10 * MINUTE_MS, concurrent: 5 });
    expect(decide(s, [{ ...over, day: 10 }], NOW).refusal?.message).toMatch(/daily budget/);
    expect(decide(s, [{ ...over, day: 10, month: 100 }], NOW).refusal?.message).toMatch(/monthly budget/);
    expect(decide(s, [over], NOW).refusal?.message).toMatch(/requests per minute/);
    expect(decide(s, [{ ...over, requests: 1 }], NOW).refusal?.message).toMatch(/tokens per minute/);
    expect(decide(s, [{ ...over, requests: 1, tat: 0 }], NOW).refusal?.message).toMatch(/at once/);
  });

  test("the user's budget wins over the key's rate limit", () => {
    const d = decide(
      [key({ rpm: 1 }), user({ dailyTokens: 100 })],
      [reading({ requests: 2 }), reading({ day: 100 })],
      NOW,
    );
    expect(d.refusal?.code).toBe("insufficient_quota");
    expect(d.refusal?.message).toMatch(/^This key's user is out of its daily budget/);
  });

  test("a key and its user: either may refuse, each named; headers show the tightest of the two", () => {
    const subjects = [
      key({ rpm: 100, tpm: 6000, dailyTokens: 1000, maxConcurrent: 10 }),
      user({ rpm: 50, tpm: 60_000, dailyTokens: 5000, monthlyTokens: 100_000 }),
    ];
    const keyR = reading({ requests: 5, tat: takeTokens(6000, 0, 5900, NOW), day: 100, concurrent: 3 });
    const userR = reading({ requests: 45, tat: takeTokens(60_000, 0, 100, NOW), day: 4950, month: 7000 });
    const d = decide(subjects, [keyR, userR], NOW);
    expect(d.refusal).toBeNull();
    expect(d.headers).toEqual({
      // the user's: 5 left of 50 (the key's 95 of 100)
      "x-ratelimit-limit-requests": "50",
      "x-ratelimit-remaining-requests": "5",
      "x-ratelimit-reset-requests": "40s",
      // the key's: 100 of 6000 (the user's 59,900 of 60,000)
      "x-ratelimit-limit-tokens": "6000",
      "x-ratelimit-remaining-tokens": "100",
      "x-ratelimit-reset-tokens": "59s",
      // the user's: 50 of 5000 (the key's 900 of 1000)
      "x-ratelimit-limit-tokens-day": "5000",
      "x-ratelimit-remaining-tokens-day": "50",
      "x-ratelimit-reset-tokens-day": "10h14m40s",
      // only the user has a monthly budget
      "x-ratelimit-limit-tokens-month": "100000",
      "x-ratelimit-remaining-tokens-month": "93000",
      "x-ratelimit-reset-tokens-month": expect.stringMatching(/^\d+h14m40s$/),
      // only the key limits requests at once
      "x-ratelimit-limit-concurrent-requests": "10",
      "x-ratelimit-remaining-concurrent-requests": "7",
    });

    // the user's limit refuses, and says whose it is
    const byUser = decide(subjects, [keyR, { ...userR, requests: 51 }], NOW);
    expect(byUser.refusal?.message).toBe("This key's user is limited to 50 requests per minute.");
    // the key's limit refuses first when both are over
    const both = decide(
      subjects,
      [
        { ...keyR, requests: 101 },
        { ...userR, requests: 51 },
      ],
      NOW,
    );
    expect(both.refusal?.message).toBe("This key is limited to 100 requests per minute.");
  });

  test("only the dimensions that have a limit send headers", () => {
    const d = decide([key({ tpm: 100 }), user({ maxConcurrent: 3 })], [reading(), reading({ concurrent: 1 })], NOW);
    expect(Object.keys(d.headers).sort()).toEqual([
      "x-ratelimit-limit-concurrent-requests",
      "x-ratelimit-limit-tokens",
      "x-ratelimit-remaining-concurrent-requests",
      "x-ratelimit-remaining-tokens",
      "x-ratelimit-reset-tokens",
    ]);
  });

  test("remaining never goes below zero", () => {
    const d = decide(
      [key({ rpm: 2, dailyTokens: 10, monthlyTokens: 10, maxConcurrent: 1 })],
      [reading({ requests: 9, day: 50, month: 50, concurrent: 4 })],
      NOW,
    );
    for (const [name, value] of Object.entries(d.headers)) {
      if (name.startsWith("x-ratelimit-remaining-")) expect(value).toBe("0");
    }
  });
});
