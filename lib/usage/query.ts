/**
 * `GET /api/usage`'s query string, checked: `group_by` (key, user, model,
 * node or day; default key), `from` and `to` (UTC days `YYYY-MM-DD`, both
 * included; default the 30 days up to today), `format` (json or csv). A bad
 * value is a 400 naming its field; so is `from` after `to`, or a range over
 * ten years (`from`).
 */
import { badRequest } from "../openai/errors";
import { GROUP_BY, type GroupBy } from "./rollup";

export interface UsageQuery {
  group_by: GroupBy;
  from: string;
  to: string;
  format: "json" | "csv";
}

export const DEFAULT_DAYS = 30;
export const MAX_YEARS = 10;

const DAY_MS = 86_400_000;
const dayText = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Epoch ms of a `YYYY-MM-DD` day (UTC), or null when it is not one (2026-02-30 is not). */
export function parseDay(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return dayText(ms) === text ? ms : null;
}

/** A query value as one string, or undefined when absent (a repeated one is refused). */
function one(query: Record<string, unknown>, field: string): string | undefined {
  const v = query[field];
  if (v === undefined || v === "") return undefined;
  if (typeof v !== "string") throw badRequest(`'${field}' must be given once.`, field, "invalid_value");
  return v;
}

function day(query: Record<string, unknown>, field: "from" | "to"): number | undefined {
  const v = one(query, field);
  if (v === undefined) return undefined;
  const ms = parseDay(v);
  if (ms === null) throw badRequest(`'${field}' must be a day, YYYY-MM-DD (UTC).`, field, "invalid_value");
  return ms;
}

/** The query, checked, with its defaults filled in (`now`: what "today" is). */
export function parseUsageQuery(query: Record<string, unknown>, now = Date.now()): UsageQuery {
  const group = one(query, "group_by") ?? "key";
  if (!(GROUP_BY as readonly string[]).includes(group)) {
    throw badRequest(`'group_by' must be one of ${GROUP_BY.join(", ")}.`, "group_by", "invalid_value");
  }
  const format = one(query, "format") ?? "json";
  if (format !== "json" && format !== "csv") {
    throw badRequest("'format' must be json or csv.", "format", "invalid_value");
  }
  const from = day(query, "from");
  const to = day(query, "to") ?? parseDay(dayText(now))!;
  const start = from ?? to - (DEFAULT_DAYS - 1) * DAY_MS;
  if (start > to) throw badRequest("'from' must not be after 'to'.", "from", "invalid_value");
  const end = new Date(to);
  const earliest = Date.UTC(end.getUTCFullYear() - MAX_YEARS, end.getUTCMonth(), end.getUTCDate());
  if (start < earliest) throw badRequest(`'from' to 'to' must be at most ${MAX_YEARS} years.`, "from", "invalid_value");
  return { group_by: group as GroupBy, from: dayText(start), to: dayText(to), format };
}
