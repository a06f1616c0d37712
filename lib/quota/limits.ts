/**
 * The limits a key or a user may have (a user's hold for all their keys
 * together): requests and tokens per minute, daily and monthly token
 * budgets (UTC calendar days and months), and requests at once. Each is a
 * whole number or null (no limit). The API names them as below; a value a
 * client sends is checked here (400 naming the field).
 */
import { badRequest } from "../openai/errors";

export interface Limits {
  rpm: number | null;
  tpm: number | null;
  dailyTokens: number | null;
  monthlyTokens: number | null;
  maxConcurrent: number | null;
}

export type LimitName = keyof Limits;

/** The API's field for each limit, and the largest value that is not a mistake. */
export const LIMIT_FIELDS: Record<string, { limit: LimitName; max: number; what: string }> = {
  rate_limit_rpm: { limit: "rpm", max: 10_000_000, what: "requests per minute" },
  rate_limit_tpm: { limit: "tpm", max: 10_000_000_000, what: "tokens per minute" },
  daily_token_budget: { limit: "dailyTokens", max: 1_000_000_000_000, what: "tokens per day" },
  monthly_token_budget: { limit: "monthlyTokens", max: 10_000_000_000_000, what: "tokens per month" },
  max_concurrent_requests: { limit: "maxConcurrent", max: 1_000_000, what: "requests at once" },
};

export const NO_LIMITS: Limits = { rpm: null, tpm: null, dailyTokens: null, monthlyTokens: null, maxConcurrent: null };

/**
 * The limits a request body sets (only the fields it has; null clears one):
 * each a whole number from 1 to its maximum, else a 400 naming the field.
 */
export function parseLimits(body: Record<string, unknown>): Partial<Limits> {
  const out: Partial<Limits> = {};
  for (const [field, { limit, max, what }] of Object.entries(LIMIT_FIELDS)) {
    const raw = body[field];
    if (raw === undefined) continue;
    if (raw === null) {
      out[limit] = null;
      continue;
    }
    if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 1 || raw > max) {
      throw badRequest(
        `${field} must be a whole number of ${what} from 1 to ${max.toLocaleString("en")}, or null for no limit.`,
        field,
        "invalid_value",
      );
    }
    out[limit] = raw;
  }
  return out;
}

/** Stored limits (any missing one is none) as a whole set. */
export function limitsOf(stored: Partial<Limits> | null | undefined): Limits {
  return { ...NO_LIMITS, ...Object.fromEntries(Object.entries(stored ?? {}).filter(([, v]) => v !== undefined)) };
}

/** Limits as the API shows them: every field, null for none. */
export function limitsView(limits: Partial<Limits> | null | undefined): Record<string, number | null> {
  const l = limitsOf(limits);
  return Object.fromEntries(Object.entries(LIMIT_FIELDS).map(([field, { limit }]) => [field, l[limit]]));
}

export function hasLimits(limits: Partial<Limits> | null | undefined): boolean {
  return Object.values(limits ?? {}).some((v) => v !== null && v !== undefined);
}
