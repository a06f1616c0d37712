/**
 * The router's wait queue: requests that found every node with their model
 * full or still loading wait here, up to `limit` (past it: 503 at once) and
 * for at most `timeoutMs` (then 503).
 *
 * Order: higher priority first (lib/routing/priority.ts); within a priority,
 * fair across keys (start-time fair queuing): each waiter gets a tag one
 * past the later of its key's last tag and the tag last served, and the
 * smallest tag goes first. One key's thousand queued requests therefore take
 * turns with another key's one instead of all going before it; a key alone
 * is served first come first served.
 */
import { apiError } from "../openai/errors";
import { DEFAULT_PRIORITY } from "./priority";

export interface Waiter<T> {
  item: T;
  resolve: () => void;
}

/** Who a waiter is for the queue's order: its priority (higher first) and the key it is fair across. */
export interface QueueClass {
  priority?: number;
  /** The API key (or user) the request came with; requests without one share a turn. */
  key?: string;
}

interface Entry<T> extends Waiter<T> {
  timer: NodeJS.Timeout;
  priority: number;
  key: string;
  tag: number;
  /** Arrival order, the last tie-break. */
  n: number;
}

/** How many waiters stood ahead of a released one, and how long it waited. */
export interface Released {
  ahead: number;
  waitedMs: number;
}

export class WaitQueue<T> {
  private readonly waiters: Array<Entry<T> & { since: number }> = [];
  /** The tag of the last waiter let go: where a key that had nothing waiting starts again. */
  private served = 0;
  /** Each key's last tag (forgotten once it is behind `served`). */
  private readonly lastTag = new Map<string, number>();
  private arrivals = 0;

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

  /**
   * Resolves when `release` lets this item go (with how many stood ahead of it
   * when it came, and its wait); rejects with a 503 when full or timed out
   * (after `timeoutMs`, at most the queue's).
   */
  wait(item: T, timeoutMs = this.timeoutMs, cls: QueueClass = {}): Promise<Released> {
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
    const key = cls.key ?? "";
    const priority = cls.priority ?? DEFAULT_PRIORITY;
    const tag = Math.max(this.served, this.lastTag.get(key) ?? 0) + 1;
    this.lastTag.set(key, tag);
    const ahead = this.waiters.filter((w) => this.before(w, priority, tag)).length;
    const since = performance.now();
    return new Promise<Released>((resolve, reject) => {
      const waiter: Entry<T> & { since: number } = {
        item,
        priority,
        key,
        tag,
        n: this.arrivals++,
        since,
        resolve: () => resolve({ ahead, waitedMs: performance.now() - since }),
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
   * Lets waiters go in the queue's order while `admit` accepts them (it is
   * told how many still wait ahead); a waiter that cannot go yet keeps its
   * place.
   */
  release(admit: (item: T, ahead: number) => boolean): void {
    if (this.waiters.length === 0) return;
    const ordered = this.waiters.length > 1 ? [...this.waiters].sort((a, b) => this.compare(a, b)) : this.waiters;
    let ahead = 0;
    for (const w of ordered) {
      if (!admit(w.item, ahead)) {
        ahead++;
        continue;
      }
      this.waiters.splice(this.waiters.indexOf(w), 1);
      clearTimeout(w.timer);
      this.served = Math.max(this.served, w.tag);
      w.resolve();
    }
    this.forgetIdleKeys();
  }

  /** A key's priority changed: its waiters take the new one (they keep their turn among the key's). Returns how many. */
  reprioritize(key: string, priority: number): number {
    let n = 0;
    for (const w of this.waiters) {
      if (w.key !== key) continue;
      w.priority = priority;
      n++;
    }
    return n;
  }

  /** Whether a waiter `w` goes before one of `priority` and `tag` (not yet queued). */
  private before(w: Entry<T>, priority: number, tag: number): boolean {
    return w.priority > priority || (w.priority === priority && w.tag <= tag);
  }

  private compare(a: Entry<T>, b: Entry<T>): number {
    return b.priority - a.priority || a.tag - b.tag || a.n - b.n;
  }

  /** A key whose last tag is behind the one served has nothing waiting that needs it. */
  private forgetIdleKeys(): void {
    if (this.lastTag.size < 64) return;
    for (const [key, tag] of this.lastTag) if (tag <= this.served) this.lastTag.delete(key);
  }
}
