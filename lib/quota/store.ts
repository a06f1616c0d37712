/**
 * Where the quota counts live. One router (or one router on several
 * processes) keeps them in memory (MemoryQuotaStore: the key service's
 * process counts for every process of its router); routers as peers on a
 * shared PostgreSQL database count there together (lib/quota/pg-store.ts).
 */
import type { Reading, Subject } from "./decide";
import { takeTokens } from "./decide";
import { dayStart, minuteStart, monthStart, MINUTE_MS } from "./windows";

/** How long a request's slot is held without news of it (a gateway that died): the meter renews it meanwhile. */
export const LEASE_MS = 60_000;

export interface QuotaStore {
  /**
   * A request starts: counted (requests per minute) and given a slot
   * (requests at once) for each subject that limits them; the rest read.
   */
  begin(subjects: Subject[], lease: string, now: number): Promise<Reading[]> | Reading[];
  /** Tokens a request of these subjects used (some of a stream, or the whole answer). */
  consume(subjects: Subject[], tokens: number, now: number): Promise<void> | void;
  /** The request is still being served: its slots are kept another LEASE_MS. */
  hold(subjects: Subject[], lease: string, now: number): Promise<void> | void;
  /** The request ended (or was refused): its slots are free. */
  release(subjects: Subject[], lease: string): Promise<void> | void;
}

/** A budget's count as kept between restarts (memory store): the subject, its period, when it began, tokens used. */
export interface BudgetCount {
  subject: string;
  period: "day" | "month";
  start: number;
  used: number;
}

interface State {
  minute: { start: number; count: number };
  tat: number;
  day: { start: number; used: number };
  month: { start: number; used: number };
  leases: Map<string, number>;
}

/** Counts in this process's memory; budgets are handed to the key service to keep (`dirty`, `restore`). */
export class MemoryQuotaStore implements QuotaStore {
  private readonly states = new Map<string, State>();
  private readonly changed = new Set<string>();

  private state(id: string, now: number): State {
    let s = this.states.get(id);
    if (!s) {
      s = {
        minute: { start: minuteStart(now), count: 0 },
        tat: 0,
        day: { start: dayStart(now), used: 0 },
        month: { start: monthStart(now), used: 0 },
        leases: new Map(),
      };
      this.states.set(id, s);
    }
    if (s.minute.start !== minuteStart(now)) s.minute = { start: minuteStart(now), count: 0 };
    if (s.day.start !== dayStart(now)) s.day = { start: dayStart(now), used: 0 };
    if (s.month.start !== monthStart(now)) s.month = { start: monthStart(now), used: 0 };
    for (const [lease, until] of s.leases) if (until <= now) s.leases.delete(lease);
    return s;
  }

  begin(subjects: Subject[], lease: string, now: number): Reading[] {
    return subjects.map(({ id, limits }) => {
      const s = this.state(id, now);
      if (limits.rpm !== null) s.minute.count++;
      if (limits.maxConcurrent !== null) s.leases.set(lease, now + LEASE_MS);
      return {
        requests: limits.rpm !== null ? s.minute.count : 0,
        requestsResetAt: s.minute.start + MINUTE_MS,
        tat: s.tat,
        day: s.day.used,
        month: s.month.used,
        concurrent: limits.maxConcurrent !== null ? s.leases.size : 0,
      };
    });
  }

  consume(subjects: Subject[], tokens: number, now: number): void {
    if (tokens <= 0) return;
    for (const { id, limits } of subjects) {
      const s = this.state(id, now);
      if (limits.tpm !== null) s.tat = takeTokens(limits.tpm, s.tat, tokens, now);
      s.day.used += tokens;
      s.month.used += tokens;
      this.changed.add(id);
    }
  }

  hold(subjects: Subject[], lease: string, now: number): void {
    for (const { id } of subjects) {
      const s = this.states.get(id);
      if (s?.leases.has(lease)) s.leases.set(lease, now + LEASE_MS);
    }
  }

  release(subjects: Subject[], lease: string): void {
    for (const { id } of subjects) this.states.get(id)?.leases.delete(lease);
  }

  /** The budget counts changed since the last call, to keep. */
  dirty(): BudgetCount[] {
    const out: BudgetCount[] = [];
    for (const id of this.changed) {
      const s = this.states.get(id);
      if (!s) continue;
      out.push({ subject: id, period: "day", ...s.day }, { subject: id, period: "month", ...s.month });
    }
    this.changed.clear();
    return out;
  }

  /** Budget counts kept before a restart (those of past days and months are dropped). */
  restore(counts: BudgetCount[], now: number): void {
    for (const c of counts) {
      const s = this.state(c.subject, now);
      if (c.period === "day" && c.start === s.day.start) s.day.used = Math.max(s.day.used, c.used);
      if (c.period === "month" && c.start === s.month.start) s.month.used = Math.max(s.month.used, c.used);
    }
  }
}
