/**
 * A pool of reusable items (context sequences): `acquire` waits when all are
 * taken, in arrival order (FIFO); an aborted waiter leaves the queue. Free
 * items are reused last-in first-out, so a lightly loaded node keeps using
 * the same sequence: its KV cache holds the previous prompt (prefix reuse) and
 * the other sequences stay empty, which keeps attention over the cache small.
 * An item can be released with a key (the conversation it served); `acquire`
 * with the same key takes that item back if it is free, so a conversation's
 * next turn finds its own KV cache; another conversation takes an unused item
 * or the one whose conversation went quiet longest ago.
 */
export class Pool<T> {
  private readonly free: T[];
  private readonly waiters: Array<{
    resolve: (item: T) => void;
    reject: (err: unknown) => void;
    signal?: AbortSignal;
    onAbort?: () => void;
  }> = [];
  /** The key each free item was last released with. */
  private readonly keys = new Map<T, string>();
  readonly capacity: number;

  constructor(items: T[]) {
    this.free = [...items];
    this.capacity = items.length;
  }

  get inUse(): number {
    return this.capacity - this.free.length;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  acquire(signal?: AbortSignal, key?: string): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const [item] = this.free.splice(this.pick(key), 1);
    if (item !== undefined) return Promise.resolve(item);
    return new Promise<T>((resolve, reject) => {
      const waiter: (typeof this.waiters)[number] = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortError(signal));
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /**
   * Which free item to hand out: without a key the most recently freed (LIFO);
   * with one, the item holding that conversation, else one holding none, else
   * the one freed longest ago (the conversation least likely to come back).
   */
  private pick(key: string | undefined): number {
    if (key === undefined) return 0;
    const mine = this.free.findIndex((it) => this.keys.get(it) === key);
    if (mine >= 0) return mine;
    const empty = this.free.findIndex((it) => !this.keys.has(it));
    return empty >= 0 ? empty : this.free.length - 1;
  }

  release(item: T, key?: string): void {
    if (key === undefined) this.keys.delete(item);
    else this.keys.set(item, key);
    const waiter = this.waiters.shift();
    if (!waiter) {
      this.free.unshift(item);
      return;
    }
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener("abort", waiter.onAbort);
    waiter.resolve(item);
  }
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new Error("aborted");
}
