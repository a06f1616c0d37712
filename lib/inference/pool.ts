/**
 * A pool of reusable items (context sequences): `acquire` waits when all are
 * taken, in arrival order (FIFO); an aborted waiter leaves the queue. Free
 * items are reused last-in first-out, so a lightly loaded node keeps using
 * the same sequence: its KV cache holds the previous prompt (prefix reuse) and
 * the other sequences stay empty, which keeps attention over the cache small.
 */
export class Pool<T> {
  private readonly free: T[];
  private readonly waiters: Array<{
    resolve: (item: T) => void;
    reject: (err: unknown) => void;
    signal?: AbortSignal;
    onAbort?: () => void;
  }> = [];
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

  acquire(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const item = this.free.shift();
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

  release(item: T): void {
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
