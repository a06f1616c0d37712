/**
 * Whether a request may start, given what its key and its user have used
 * (pure: the stores read and count, this decides), and the
 * `x-ratelimit-*` headers that tell a client where it stands.
 *
 * Tokens per minute are a bucket of `tpm` tokens refilled continuously
 * (a GCRA: one time, `tat`, at which the bucket is full again): a request
 * starts while at least one token is left, and what it uses is taken when
 * it flows, so the bucket may go into debt; the wait until a token is back
 * is its Retry-After. Requests per minute count in fixed minutes. Budgets
 * are UTC days and months: an exhausted one answers `insufficient_quota`.
 */
import type { Limits } from "./limits";
import { MINUTE_MS, nextDay, nextMonth, resetText } from "./windows";

/** A key, or a user (whose limits hold for all their keys together). */
export interface Subject {
  /** `key:<id>` or `user:<id>`: what the stores count by. */
  id: string;
  kind: "key" | "user";
  limits: Limits;
}

/** What a subject has used, as a store read it when a request started (that request counted in). */
export interface Reading {
  /** Requests in the current minute, this one included (0 when requests are not limited), and when it ends. */
  requests: number;
  requestsResetAt: number;
  /** When the tokens-per-minute bucket is full again (at or before now: full). */
  tat: number;
  /** Tokens used today and this month (UTC). */
  day: number;
  month: number;
  /** Requests being served, this one included (0 when not limited). */
  concurrent: number;
}

export interface Refusal {
  code: "rate_limit_exceeded" | "insufficient_quota";
  message: string;
  retryAfterSecs: number;
  /** The same wait to the millisecond (`retry-after-ms`, which OpenAI's clients read first). */
  retryAfterMs: number;
}

export interface Decision {
  refusal: Refusal | null;
  headers: Record<string, string>;
}

/** Milliseconds one token takes to come back to a bucket of `tpm`. */
export function tokenInterval(tpm: number): number {
  return MINUTE_MS / tpm;
}

/** Tokens left in a bucket of `tpm` that is full again at `tat`. */
export function tokensLeft(tpm: number, tat: number, now: number): number {
  const debt = Math.max(0, tat - now);
  return Math.max(0, Math.floor((MINUTE_MS - debt) / tokenInterval(tpm)));
}

/** The bucket's `tat` after `tokens` were taken at `now`. */
export function takeTokens(tpm: number, tat: number, tokens: number, now: number): number {
  return Math.max(tat, now) + tokens * tokenInterval(tpm);
}

const wait = (ms: number) => ({
  retryAfterSecs: Math.max(1, Math.ceil(ms / 1000)),
  retryAfterMs: Math.max(1, Math.ceil(ms)),
});

function whose(s: Subject): string {
  return s.kind === "key" ? "This key is" : "This key's user is";
}

/** The first limit a subject is over, if any (budgets first: waiting a minute does not help them). */
function refusalFor(s: Subject, r: Reading, now: number): Refusal | null {
  const l = s.limits;
  if (l.monthlyTokens !== null && r.month >= l.monthlyTokens) {
    return {
      code: "insufficient_quota",
      message: `${whose(s)} out of its monthly budget of ${l.monthlyTokens} tokens; it renews on the 1st (UTC).`,
      ...wait(nextMonth(now) - now),
    };
  }
  if (l.dailyTokens !== null && r.day >= l.dailyTokens) {
    return {
      code: "insufficient_quota",
      message: `${whose(s)} out of its daily budget of ${l.dailyTokens} tokens; it renews at 00:00 UTC.`,
      ...wait(nextDay(now) - now),
    };
  }
  if (l.rpm !== null && r.requests > l.rpm) {
    return {
      code: "rate_limit_exceeded",
      message: `${whose(s)} limited to ${l.rpm} requests per minute.`,
      ...wait(r.requestsResetAt - now),
    };
  }
  if (l.tpm !== null && tokensLeft(l.tpm, r.tat, now) < 1) {
    const untilOne = r.tat - now - MINUTE_MS + tokenInterval(l.tpm);
    return {
      code: "rate_limit_exceeded",
      message: `${whose(s)} limited to ${l.tpm} tokens per minute.`,
      ...wait(untilOne),
    };
  }
  if (l.maxConcurrent !== null && r.concurrent > l.maxConcurrent) {
    return {
      code: "rate_limit_exceeded",
      message: `${whose(s)} limited to ${l.maxConcurrent} requests at once.`,
      ...wait(1000),
    };
  }
  return null;
}

interface Gauge {
  limit: number;
  remaining: number;
  resetMs: number | null;
}

/** Per dimension, the subject with the least left (a key's own limit, or its user's). */
function tightest(gauges: Array<Gauge | null>): Gauge | null {
  let best: Gauge | null = null;
  for (const g of gauges) if (g && (!best || g.remaining < best.remaining)) best = g;
  return best;
}

/** The `x-ratelimit-*` headers of a request: what is left of each limit that holds for it. */
function headersFor(subjects: Subject[], readings: Reading[], now: number): Record<string, string> {
  const pairs = subjects.map((s, i) => [s.limits, readings[i]] as const);
  const dims: Array<[string, Gauge | null]> = [
    [
      "requests",
      tightest(
        pairs.map(([l, r]) =>
          l.rpm === null
            ? null
            : { limit: l.rpm, remaining: Math.max(0, l.rpm - r.requests), resetMs: r.requestsResetAt - now },
        ),
      ),
    ],
    [
      "tokens",
      tightest(
        pairs.map(([l, r]) =>
          l.tpm === null
            ? null
            : { limit: l.tpm, remaining: tokensLeft(l.tpm, r.tat, now), resetMs: Math.max(0, r.tat - now) },
        ),
      ),
    ],
    [
      "tokens-day",
      tightest(
        pairs.map(([l, r]) =>
          l.dailyTokens === null
            ? null
            : { limit: l.dailyTokens, remaining: Math.max(0, l.dailyTokens - r.day), resetMs: nextDay(now) - now },
        ),
      ),
    ],
    [
      "tokens-month",
      tightest(
        pairs.map(([l, r]) =>
          l.monthlyTokens === null
            ? null
            : {
                limit: l.monthlyTokens,
                remaining: Math.max(0, l.monthlyTokens - r.month),
                resetMs: nextMonth(now) - now,
              },
        ),
      ),
    ],
    [
      "concurrent-requests",
      tightest(
        pairs.map(([l, r]) =>
          l.maxConcurrent === null
            ? null
            : { limit: l.maxConcurrent, remaining: Math.max(0, l.maxConcurrent - r.concurrent), resetMs: null },
        ),
      ),
    ],
  ];
  const headers: Record<string, string> = {};
  for (const [name, g] of dims) {
    if (!g) continue;
    headers[`x-ratelimit-limit-${name}`] = String(g.limit);
    headers[`x-ratelimit-remaining-${name}`] = String(g.remaining);
    if (g.resetMs !== null) headers[`x-ratelimit-reset-${name}`] = resetText(g.resetMs);
  }
  return headers;
}

/** Whether a request of these subjects (their readings, this request counted in) may start. */
export function decide(subjects: Subject[], readings: Reading[], now: number): Decision {
  // a budget that is out (the key's or its user's) wins over a rate: waiting for the rate would not help
  const refusals = subjects.map((s, i) => refusalFor(s, readings[i], now)).filter((r): r is Refusal => r !== null);
  const refusal = refusals.find((r) => r.code === "insufficient_quota") ?? refusals[0] ?? null;
  return { refusal, headers: headersFor(subjects, readings, now) };
}
