import { toOpenAIError } from "../../../../lib/openai/errors";
import { hasLimits, LIMIT_FIELDS, limitsOf, limitsView, NO_LIMITS, parseLimits } from "../../../../lib/quota/limits";

/** The OpenAI error a call throws (fails when it does not throw). */
function refusal(work: () => unknown) {
  try {
    work();
  } catch (e) {
    return toOpenAIError(e);
  }
  throw new Error("accepted");
}

test("parseLimits takes whole numbers from 1 to each field's maximum, only the fields given", () => {
  expect(
    parseLimits({
      rate_limit_rpm: 60,
      rate_limit_tpm: 100_000,
      daily_token_budget: 1,
      monthly_token_budget: 10_000_000_000_000,
      max_concurrent_requests: 4,
    }),
  ).toEqual({ rpm: 60, tpm: 100_000, dailyTokens: 1, monthlyTokens: 10_000_000_000_000, maxConcurrent: 4 });
  expect(parseLimits({ rate_limit_rpm: 10 })).toEqual({ rpm: 10 });
  expect(parseLimits({})).toEqual({});
  expect(parseLimits({ name: "a key", scopes: ["read"] })).toEqual({});
  for (const [field, { max }] of Object.entries(LIMIT_FIELDS)) {
    expect(Object.values(parseLimits({ [field]: max }))).toEqual([max]);
  }
});

test("null clears a limit", () => {
  expect(parseLimits({ rate_limit_tpm: null, daily_token_budget: null })).toEqual({ tpm: null, dailyTokens: null });
});

test("a negative, zero, fractional, absurd or non-number value is a 400 naming the field", () => {
  const bad: unknown[] = [-1, 0, 1.5, Number.NaN, Infinity, -Infinity, "60", "", true, {}, [], [5]];
  for (const [field, { max }] of Object.entries(LIMIT_FIELDS)) {
    for (const value of [...bad, max + 1, max * 1000]) {
      const err = refusal(() => parseLimits({ [field]: value }));
      expect(err.status).toBe(400);
      expect(err.body.error.param).toBe(field);
      expect(err.body.error.code).toBe("invalid_value");
      expect(err.body.error.type).toBe("invalid_request_error");
      expect(err.body.error.message).toContain(field);
    }
  }
  // the first bad field is named, even after good ones
  const err = refusal(() => parseLimits({ rate_limit_rpm: 10, max_concurrent_requests: -3 }));
  expect(err.body.error.param).toBe("max_concurrent_requests");
  expect(err.body.error.message).toMatch(/from 1 to 1,000,000, or null/);
});

test("limitsOf fills missing limits with none", () => {
  expect(limitsOf(null)).toEqual(NO_LIMITS);
  expect(limitsOf(undefined)).toEqual(NO_LIMITS);
  expect(limitsOf({ rpm: 5, tpm: undefined })).toEqual({ ...NO_LIMITS, rpm: 5 });
  expect(limitsOf({ dailyTokens: 100, rpm: null })).toEqual({ ...NO_LIMITS, dailyTokens: 100 });
  // NO_LIMITS itself is never changed
  limitsOf({ rpm: 1 }).rpm = 2;
  expect(NO_LIMITS.rpm).toBeNull();
});

test("limitsView shows every API field, null for none", () => {
  expect(limitsView(null)).toEqual({
    rate_limit_rpm: null,
    rate_limit_tpm: null,
    daily_token_budget: null,
    monthly_token_budget: null,
    max_concurrent_requests: null,
  });
  expect(limitsView({ tpm: 1000, maxConcurrent: 2 })).toEqual({
    rate_limit_rpm: null,
    rate_limit_tpm: 1000,
    daily_token_budget: null,
    monthly_token_budget: null,
    max_concurrent_requests: 2,
  });
  // what parseLimits reads back is what limitsView shows
  const body = { rate_limit_rpm: 3, monthly_token_budget: 9 };
  expect(limitsView(parseLimits(body))).toEqual({ ...limitsView(null), ...body });
});

test("hasLimits: any limit that is set", () => {
  expect(hasLimits(null)).toBe(false);
  expect(hasLimits(undefined)).toBe(false);
  expect(hasLimits({})).toBe(false);
  expect(hasLimits(NO_LIMITS)).toBe(false);
  expect(hasLimits({ rpm: undefined, tpm: null })).toBe(false);
  expect(hasLimits({ maxConcurrent: 1 })).toBe(true);
  expect(hasLimits({ ...NO_LIMITS, monthlyTokens: 5 })).toBe(true);
});
