import { toOpenAIError } from "../../../../lib/openai/errors";
import type { Subject } from "../../../../lib/quota/decide";
import { type Limits, NO_LIMITS } from "../../../../lib/quota/limits";
import { Quota } from "../../../../lib/quota/quota";
import { MemoryQuotaStore, type QuotaStore } from "../../../../lib/quota/store";

const T0 = Date.parse("2024-03-15T13:45:20Z"); // 40 s before the minute ends

const key = (limits: Partial<Limits>, id = "key:k"): Subject => ({
  id,
  kind: "key",
  limits: { ...NO_LIMITS, ...limits },
});
const user = (limits: Partial<Limits>, id = "user:u"): Subject => ({
  id,
  kind: "user",
  limits: { ...NO_LIMITS, ...limits },
});

function setup(store: QuotaStore = new MemoryQuotaStore()) {
  let now = T0;
  const warnings: string[] = [];
  const quota = new Quota(store, { warn: (m) => warnings.push(m) }, () => now);
  return {
    quota,
    warnings,
    store,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** The OpenAI error an admission is refused with (fails when it is admitted). */
async function refusal(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    return toOpenAIError(e);
  }
  throw new Error("admitted");
}

describe("Quota", () => {
  test("admit gives a grant with its ticket, subjects and x-ratelimit headers", async () => {
    const { quota } = setup();
    const subjects = [key({ rpm: 10 }), user({ dailyTokens: 1000 })];
    const a = await quota.admit(subjects);
    const b = await quota.admit(subjects);
    expect(a.ticket).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.ticket).not.toBe(a.ticket);
    expect(a.subjects).toBe(subjects);
    expect(a.headers).toEqual({
      "x-ratelimit-limit-requests": "10",
      "x-ratelimit-remaining-requests": "9",
      "x-ratelimit-reset-requests": "40s",
      "x-ratelimit-limit-tokens-day": "1000",
      "x-ratelimit-remaining-tokens-day": "1000",
      "x-ratelimit-reset-tokens-day": "10h14m40s",
    });
    expect(b.headers["x-ratelimit-remaining-requests"]).toBe("8");
    // no limits: no headers
    expect((await quota.admit([key({}, "key:free")])).headers).toEqual({});
  });

  test("a request over a rate is refused with a 429 rate_limit_exceeded, Retry-After and the headers", async () => {
    const { quota, advance } = setup();
    const s = [key({ rpm: 2 })];
    await quota.admit(s);
    await quota.admit(s);
    const err = await refusal(quota.admit(s));
    expect(err.status).toBe(429);
    expect(err.body.error).toEqual({
      message: "This key is limited to 2 requests per minute.",
      type: "rate_limit_error",
      param: null,
      code: "rate_limit_exceeded",
    });
    expect(err.retryAfter).toBe(40);
    expect(err.headers).toMatchObject({
      "x-ratelimit-limit-requests": "2",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "40s",
      "retry-after-ms": "40000",
    });
    expect(err.headers).not.toHaveProperty("x-should-retry");
    // the next minute it is admitted
    advance(40_000);
    await expect(quota.admit(s)).resolves.toMatchObject({ headers: { "x-ratelimit-remaining-requests": "1" } });
  });

  test("a used-up budget is refused with insufficient_quota until the next UTC midnight", async () => {
    const { quota, advance } = setup();
    const s = [key({ tpm: 1_000_000 }), user({ dailyTokens: 100 })];
    const g = await quota.admit(s);
    await quota.use(g, 100, true);
    const err = await refusal(quota.admit(s));
    expect(err.status).toBe(429);
    expect(err.body.error.code).toBe("insufficient_quota");
    expect(err.body.error.type).toBe("insufficient_quota");
    expect(err.body.error.message).toMatch(/^This key's user is out of its daily budget of 100 tokens/);
    expect(err.retryAfter).toBe(10 * 3600 + 14 * 60 + 40);
    expect(err.headers).toMatchObject({
      "x-ratelimit-remaining-tokens-day": "0",
      "x-ratelimit-reset-tokens-day": "10h14m40s",
      "x-should-retry": "false",
    });
    expect(err.headers).not.toHaveProperty("retry-after-ms");
    advance(10 * 3600_000 + 14 * 60_000 + 40_000);
    await expect(quota.admit(s)).resolves.toBeDefined();
  });

  test("tokens per minute: use() takes from the bucket; the refusal's Retry-After is the wait for one token", async () => {
    const { quota, advance } = setup();
    const s = [key({ tpm: 60 })];
    const g = await quota.admit(s);
    await quota.use(g, 30, false);
    await quota.use(g, 40, true); // 10 into debt
    const err = await refusal(quota.admit(s));
    expect(err.body.error.code).toBe("rate_limit_exceeded");
    expect(err.retryAfter).toBe(11);
    advance(10_999);
    await refusal(quota.admit(s));
    advance(1);
    const ok = await quota.admit(s);
    expect(ok.headers["x-ratelimit-remaining-tokens"]).toBe("1");
  });

  test("a refused request frees its slot; an ended one frees its own", async () => {
    const { quota } = setup();
    const s = [key({ maxConcurrent: 1 }), user({ maxConcurrent: 5 })];
    const first = await quota.admit(s);
    expect(first.headers["x-ratelimit-remaining-concurrent-requests"]).toBe("0");
    for (let i = 0; i < 3; i++) {
      const err = await refusal(quota.admit(s));
      expect(err.body.error.message).toBe("This key is limited to 1 requests at once.");
      expect(err.retryAfter).toBe(1);
    }
    // the refused ones hold nothing: the user has one request being served
    await quota.use(first, 0, true);
    const second = await quota.admit(s);
    expect(second.headers["x-ratelimit-remaining-concurrent-requests"]).toBe("0");
    // another key of the same user has the user's slots less this one
    const other = await quota.admit([key({ maxConcurrent: 3 }, "key:other"), s[1]]);
    expect(other.headers["x-ratelimit-remaining-concurrent-requests"]).toBe("2");
  });

  test("use() consumes tokens and holds the slot, or ends it", async () => {
    const store = new MemoryQuotaStore();
    const consume = jest.spyOn(store, "consume");
    const hold = jest.spyOn(store, "hold");
    const release = jest.spyOn(store, "release");
    const { quota, advance } = setup(store);
    const s = [key({ maxConcurrent: 2, monthlyTokens: 1000 })];
    const g = await quota.admit(s);
    advance(500);
    await quota.use(g, 12, false);
    expect(consume).toHaveBeenCalledWith(s, 12, T0 + 500);
    expect(hold).toHaveBeenCalledWith(s, g.ticket, T0 + 500);
    expect(release).not.toHaveBeenCalled();
    await quota.use({ ticket: g.ticket, subjects: g.subjects }, 0, false); // no tokens: a hold alone
    expect(consume).toHaveBeenCalledTimes(1);
    expect(hold).toHaveBeenCalledTimes(2);
    await quota.use(g, 8, true);
    expect(consume).toHaveBeenLastCalledWith(s, 8, T0 + 500);
    expect(release).toHaveBeenCalledWith(s, g.ticket);
    expect(hold).toHaveBeenCalledTimes(2);
    const next = await quota.admit(s);
    expect(next.headers).toMatchObject({
      "x-ratelimit-remaining-tokens-month": "980",
      "x-ratelimit-remaining-concurrent-requests": "1",
    });
  });

  test("a store that fails leaves the limits to memory, with one warning", async () => {
    const broken: QuotaStore = {
      begin: () => {
        throw new Error("connection refused");
      },
      consume: () => Promise.reject(new Error("connection refused")),
      hold: () => Promise.reject(new Error("connection refused")),
      release: () => {
        throw new Error("connection refused");
      },
    };
    const { quota, warnings, advance } = setup(broken);
    const s = [key({ rpm: 2, maxConcurrent: 5, dailyTokens: 50 })];
    const a = await quota.admit(s);
    expect(a.headers["x-ratelimit-remaining-requests"]).toBe("1");
    await quota.use(a, 20, false);
    await quota.use(a, 30, true);
    // counted in memory meanwhile: the budget is out
    const err = await refusal(quota.admit(s));
    expect(err.body.error.code).toBe("insufficient_quota");
    expect(warnings).toEqual(["limits counted by this router only meanwhile: connection refused"]);
    // a failure later on warns again
    advance(10_001);
    await refusal(quota.admit(s));
    expect(warnings).toHaveLength(2);
  });

  test("a store that answers again is used again", async () => {
    let down = true;
    const memory = new MemoryQuotaStore();
    const flaky: QuotaStore = {
      begin: (...args) => (down ? Promise.reject(new Error("down")) : memory.begin(...args)),
      consume: (...args) => (down ? Promise.reject(new Error("down")) : memory.consume(...args)),
      hold: (...args) => (down ? Promise.reject(new Error("down")) : memory.hold(...args)),
      release: (...args) => (down ? Promise.reject(new Error("down")) : memory.release(...args)),
    };
    const begin = jest.spyOn(memory, "begin");
    const { quota, warnings } = setup(flaky);
    const s = [key({ rpm: 100 })];
    await quota.admit(s);
    expect(begin).not.toHaveBeenCalled();
    down = false;
    const g = await quota.admit(s);
    expect(begin).toHaveBeenCalledTimes(1);
    expect(g.headers["x-ratelimit-remaining-requests"]).toBe("99"); // the store's own count
    expect(warnings).toHaveLength(1);
  });
});
