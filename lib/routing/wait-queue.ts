/**
 * The router's wait queue: requests that found every node with their model
 * full or still loading wait here, first come first served, up to `limit`
 * (past it: 503 at once) and for at most `timeoutMs` (then 503).
 */
import { apiError } from "../openai/errors";

export interface Waiter<T> {
  item: T;
  resolve: () => void;
}

export class WaitQueue<T> {
  private readonly waiters: Array<Waiter<T> & { timer: NodeJS.Timeout }> = [];

  constructor(
    private readonly limit: number,
    private readonly timeoutMs: number,
  ) {}

  get length(): number {
    return this.waiters.length;
  }

  /** How many waiters match `pred`. */
  count(pred: (item: T) => boolean): number {
    return this.waiters.filter((w) => pred(w.item)).length;
  }

  /** Resolves when `release` lets this item go; rejects with a 503 when full or timed out (after `timeoutMs`, at most the queue's). */
  wait(item: T, timeoutMs = this.timeoutMs): Promise<void> {
    const waitMs = Math.min(timeoutMs, this.timeoutMs);
    if (this.waiters.length >= this.limit) {
      return Promise.reject(
        apiError(
          503,
          `All nodes for this model are busy and ${this.limit} requests are already waiting.`,
          "queue_full",
          {
            retryAfter: 1,
          },
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        item,
        resolve,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(
            apiError(503, `No node had room for this request within ${Math.round(waitMs / 1000)} s.`, "queue_timeout", {
              retryAfter: 1,
            }),
          );
        }, waitMs),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Lets waiters go in order while `admit` accepts them (it is told how many
   * still wait ahead); a waiter that cannot go yet keeps its place.
   */
  release(admit: (item: T, ahead: number) => boolean): void {
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i];
      if (admit(w.item, i)) {
        this.waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve();
      } else {
        i++;
      }
    }
  }
}
