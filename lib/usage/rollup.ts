/**
 * Usage as daily roll-ups (services/usage.service.ts): one row per UTC day,
 * API key, user, model and node, with the sums of its requests and a latency
 * histogram, so rows from any number of routers and flushes add up (a sum of
 * rows is the row of all their requests) and outlive history's retention.
 * Pure: no I/O here.
 *
 * The histogram is log-scale: bucket 0 holds durations under 1 ms, bucket i
 * (1…39) those in [2^((i-1)/2), 2^(i/2)) ms, the last everything from 2^19 ms
 * (about 8.7 minutes) on. A median read from it is within a bucket (a factor
 * of √2) of the true one.
 */
import type { HistoryRecord } from "../history/record";

export const BUCKETS = 40;

/** The fields of a history record a roll-up reads. */
export type UsageSample = Pick<
  HistoryRecord,
  "ts" | "api_key_id" | "user_id" | "model" | "node_id" | "status" | "duration_ms" | "tokens_in" | "tokens_out"
>;

export interface UsageKey {
  /** The UTC day of the request's start, `YYYY-MM-DD`. */
  day: string;
  api_key_id: string | null;
  user_id: string | null;
  model: string | null;
  node_id: string | null;
}

export interface UsageRow extends UsageKey {
  requests: number;
  /** Requests answered with a status of 400 or more. */
  errors: number;
  tokens_in: number;
  tokens_out: number;
  duration_ms_sum: number;
  /** Requests per latency bucket (`bucketOf`), only buckets that have any. */
  latency_hist: Record<string, number>;
}

/** Rows by their id (`rowId`). */
export type UsageRows = Map<string, UsageRow>;

export const GROUP_BY = ["key", "user", "model", "node", "day"] as const;
export type GroupBy = (typeof GROUP_BY)[number];

export interface UsageSummary {
  group: string | null;
  requests: number;
  errors: number;
  tokens_in: number;
  tokens_out: number;
  median_latency_ms: number | null;
}

/** What `GET /api/usage` answers (the usage service's `report`). */
export interface UsageReport {
  group_by: GroupBy;
  from: string;
  to: string;
  rows: UsageSummary[];
}

/** The row's identity as text: the same key always gives the same id (stores use it as the row's primary key). */
export function rowId(k: UsageKey): string {
  return JSON.stringify([k.day, k.api_key_id, k.user_id, k.model, k.node_id]);
}

const DAY_TEXT = /^\d{4}-\d{2}-\d{2}$/;

/** The UTC day of an epoch-ms time, `YYYY-MM-DD`, or null for no time of the years 0000 to 9999. */
export function dayOf(ts: number): string | null {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return null;
  const day = d.toISOString().slice(0, 10);
  return DAY_TEXT.test(day) ? day : null;
}

/** The histogram bucket of a duration (ms). */
export function bucketOf(ms: number): number {
  if (!(ms >= 1)) return 0;
  return Math.min(BUCKETS - 1, Math.floor(2 * Math.log2(ms)) + 1);
}

/** The value a bucket stands for: the geometric middle of its bounds (0.5 ms for the first). */
export function bucketValue(i: number): number {
  return i <= 0 ? 0.5 : 2 ** ((i - 1) / 2 + 0.25);
}

const count = (n: number | null | undefined) => (typeof n === "number" && Number.isFinite(n) && n > 0 ? n : 0);

function emptyRow(k: UsageKey): UsageRow {
  const { day, api_key_id, user_id, model, node_id } = k;
  const sums = { requests: 0, errors: 0, tokens_in: 0, tokens_out: 0, duration_ms_sum: 0 };
  return { day, api_key_id, user_id, model, node_id, ...sums, latency_hist: {} };
}

/** Adds `more`'s sums and histogram to `into`. */
function addTo(into: UsageRow, more: UsageRow): void {
  into.requests += more.requests;
  into.errors += more.errors;
  into.tokens_in += more.tokens_in;
  into.tokens_out += more.tokens_out;
  into.duration_ms_sum += more.duration_ms_sum;
  for (const [b, n] of Object.entries(more.latency_hist)) into.latency_hist[b] = (into.latency_hist[b] ?? 0) + n;
}

/** Counts one finished request in its day's row (made when missing); the row, or null for a record without a time. */
export function addRecord(rows: UsageRows, rec: UsageSample): UsageRow | null {
  const day = typeof rec.ts === "number" ? dayOf(rec.ts) : null;
  if (day === null) return null;
  const key: UsageKey = {
    day,
    api_key_id: rec.api_key_id ?? null,
    user_id: rec.user_id ?? null,
    model: rec.model ?? null,
    node_id: rec.node_id ?? null,
  };
  const id = rowId(key);
  let row = rows.get(id);
  if (!row) rows.set(id, (row = emptyRow(key)));
  const ms = count(rec.duration_ms);
  row.requests += 1;
  if (rec.status >= 400) row.errors += 1;
  row.tokens_in += count(rec.tokens_in);
  row.tokens_out += count(rec.tokens_out);
  row.duration_ms_sum += ms;
  const b = String(bucketOf(ms));
  row.latency_hist[b] = (row.latency_hist[b] ?? 0) + 1;
  return row;
}

/** Adds rows into `rows` (same key: summed; the rows given are never changed); `rows`. */
export function mergeRows(rows: UsageRows, more: Iterable<UsageRow>): UsageRows {
  for (const r of more) {
    const id = rowId(r);
    let row = rows.get(id);
    if (!row) rows.set(id, (row = emptyRow(r)));
    addTo(row, r);
  }
  return rows;
}

/** Requests rolled up: one row per day, key, user, model and node. */
export function rollUp(records: Iterable<UsageSample>): UsageRow[] {
  const rows: UsageRows = new Map();
  for (const rec of records) addRecord(rows, rec);
  return [...rows.values()];
}

/** The median duration a histogram holds (the middle two averaged for an even count), or null when empty. */
export function medianOf(hist: Record<string, number>): number | null {
  const buckets = Object.entries(hist)
    .map(([b, n]) => [Number(b), n] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((a, [, n]) => a + n, 0);
  if (!total) return null;
  // the values of the samples ranked `lo` and `hi` (1-based): the same one for an odd count
  const lo = Math.ceil(total / 2);
  const hi = Math.floor(total / 2) + 1;
  const at = (rank: number) => {
    let seen = 0;
    for (const [b, n] of buckets) if ((seen += n) >= rank) return bucketValue(b);
    return bucketValue(buckets[buckets.length - 1][0]);
  };
  return (at(lo) + at(hi)) / 2;
}

const GROUP_FIELD: Record<GroupBy, keyof UsageKey> = {
  key: "api_key_id",
  user: "user_id",
  model: "model",
  node: "node_id",
  day: "day",
};

/** Nulls last; text in code-unit order (the same on every machine). */
function byGroup(a: UsageSummary, b: UsageSummary): number {
  if (a.group === b.group) return 0;
  if (a.group === null) return 1;
  if (b.group === null) return -1;
  return a.group < b.group ? -1 : 1;
}

/** Rows summed per key, user, model, node or day, sorted by that group. */
export function summarize(rows: Iterable<UsageRow>, groupBy: GroupBy): UsageSummary[] {
  const field = GROUP_FIELD[groupBy];
  const groups = new Map<string | null, UsageRow>();
  for (const r of rows) {
    const g = r[field];
    let sum = groups.get(g);
    if (!sum) groups.set(g, (sum = emptyRow(r)));
    addTo(sum, r);
  }
  return [...groups.entries()]
    .map(([group, s]): UsageSummary => {
      const median = medianOf(s.latency_hist);
      return {
        group,
        requests: s.requests,
        errors: s.errors,
        tokens_in: s.tokens_in,
        tokens_out: s.tokens_out,
        median_latency_ms: median === null ? null : Math.round(median * 10) / 10,
      };
    })
    .sort(byGroup);
}

const isText = (v: unknown) => v === null || (typeof v === "string" && v.length <= 4096);
const isCount = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;

/** Whether a value (from another process) is a usage row: a day, key fields of text or null, counts. */
export function isUsageRow(v: unknown): v is UsageRow {
  const r = v as Partial<Record<keyof UsageRow, unknown>> | null;
  if (typeof r !== "object" || r === null) return false;
  if (typeof r.day !== "string" || !DAY_TEXT.test(r.day)) return false;
  if (![r.api_key_id, r.user_id, r.model, r.node_id].every(isText)) return false;
  if (![r.requests, r.errors, r.tokens_in, r.tokens_out, r.duration_ms_sum].every(isCount)) return false;
  const h = r.latency_hist;
  if (typeof h !== "object" || h === null || Array.isArray(h)) return false;
  return Object.entries(h).every(([b, n]) => /^\d+$/.test(b) && Number(b) < BUCKETS && isCount(n));
}
