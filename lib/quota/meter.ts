/**
 * The api's side of a request's quota: the tokens it uses, reported to the
 * key service as they flow (a stream's every second, so a budget or a
 * tokens-per-minute limit sees them while the stream runs), the rest when
 * it ends, with the end itself (its slot is freed). While a request is
 * served and reports nothing (a long wait in the queue), its slot's lease is
 * renewed now and then.
 */
export type Report = (tokens: number, ended: boolean) => Promise<void>;

const FLUSH_MS = 1000;
const HOLD_MS = 20_000;

export class Meter {
  private counted = 0;
  private pending = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly holdTimer: NodeJS.Timeout | null;
  private ended = false;
  /** Taken over by the request's trace, which ends it with the answer's usage. */
  claimed = false;

  constructor(
    private readonly report: Report,
    private readonly onError: (err: Error) => void,
    /** Whether the request holds a slot (a limit on requests at once) whose lease must be renewed while it runs. */
    holdsSlot = true,
  ) {
    this.holdTimer = holdsSlot ? setInterval(() => this.send(false), HOLD_MS) : null;
    this.holdTimer?.unref();
  }

  /** Tokens used so far (a stream's chunks as they pass). */
  add(tokens: number): void {
    if (this.ended || tokens <= 0) return;
    this.counted += tokens;
    this.pending += tokens;
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.send(false);
      }, FLUSH_MS);
      this.flushTimer.unref();
    }
  }

  /** The request ended: `total` is what its usage says it used (null: what was counted). */
  end(total: number | null): void {
    if (this.ended) return;
    if (total !== null && total > this.counted) this.pending += total - this.counted;
    this.ended = true;
    if (this.holdTimer) clearInterval(this.holdTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.send(true);
  }

  private send(ended: boolean): void {
    const tokens = this.pending;
    this.pending = 0;
    this.report(tokens, ended).catch((err: Error) => this.onError(err));
  }
}
