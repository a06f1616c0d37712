/**
 * Admission and metering of requests against the limits of their key and
 * user. `admit` counts a request in (or refuses it: 429 with Retry-After and
 * the `x-ratelimit-*` headers) and gives it a ticket; the tokens it uses are
 * reported on that ticket as they flow (`use`), and its end frees its slot.
 * A budget that runs out while a request is served lets it finish: only the
 * next request is refused. A store that fails (the database down) leaves the
 * limits to this process's memory meanwhile, rather than failing requests.
 */
import { randomUUID } from "node:crypto";
import { apiError } from "../openai/errors";
import { decide, type Subject } from "./decide";
import { MemoryQuotaStore, type QuotaStore } from "./store";

/**
 * What an admitted request carries (across processes too): its ticket (its
 * slot's lease), whom it counts for, and the headers its answer sends.
 */
export interface Grant {
  ticket: string;
  subjects: Subject[];
  headers: Record<string, string>;
}

interface Logger {
  warn(msg: string): void;
}

export class Quota {
  /** Counts while the store fails (its database is down). */
  private readonly fallback = new MemoryQuotaStore();
  private lastWarning = 0;

  constructor(
    private readonly store: QuotaStore,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Counts a request of `subjects` in, or throws the 429 that says which limit it is over. */
  async admit(subjects: Subject[]): Promise<Grant> {
    const now = this.clock();
    const ticket = randomUUID();
    const readings = await this.safely(
      (s) => s.begin(subjects, ticket, now),
      () => this.fallback.begin(subjects, ticket, now),
    );
    const { refusal, headers } = decide(subjects, readings, now);
    if (refusal) {
      await this.safely(
        (s) => s.release(subjects, ticket),
        () => this.fallback.release(subjects, ticket),
      );
      const budget = refusal.code === "insufficient_quota";
      throw apiError(429, refusal.message, refusal.code, {
        retryAfter: refusal.retryAfterSecs,
        // an exhausted budget renews in hours: clients that would wait that long are told not to retry
        headers: budget
          ? { ...headers, "x-should-retry": "false" }
          : { ...headers, "retry-after-ms": String(refusal.retryAfterMs) },
        type: budget ? "insufficient_quota" : undefined,
      });
    }
    return { ticket, subjects, headers };
  }

  /**
   * Tokens a request used since its last report (a stream's so far, or the
   * whole answer), and whether it has ended (its slot is then free; else
   * its lease is renewed). Any router's key service may take the report.
   */
  async use(grant: Pick<Grant, "ticket" | "subjects">, tokens: number, ended: boolean): Promise<void> {
    const now = this.clock();
    const { ticket, subjects } = grant;
    if (tokens > 0) {
      await this.safely(
        (s) => s.consume(subjects, tokens, now),
        () => this.fallback.consume(subjects, tokens, now),
      );
    }
    await this.safely(
      (s) => (ended ? s.release(subjects, ticket) : s.hold(subjects, ticket, now)),
      () => (ended ? this.fallback.release(subjects, ticket) : this.fallback.hold(subjects, ticket, now)),
    );
  }

  private async safely<T>(work: (s: QuotaStore) => T | Promise<T>, instead: () => T): Promise<T> {
    try {
      return await work(this.store);
    } catch (err) {
      const now = this.clock();
      if (now - this.lastWarning > 10_000) {
        this.lastWarning = now;
        this.log.warn(`limits counted by this router only meanwhile: ${(err as Error)?.message ?? err}`);
      }
      return instead();
    }
  }
}
