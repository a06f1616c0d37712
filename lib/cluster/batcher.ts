/**
 * Collects items and hands them on together: at `max` items at once, else
 * `delayMs` after the first. Router processes send their finished requests
 * to history (and to the other processes' dashboards) this way, one message
 * per batch instead of one per request.
 */
export class Batcher<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly send: (items: T[]) => void,
    private readonly delayMs = 50,
    private readonly max = 200,
  ) {}

  push(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.max) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Sends what is waiting now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.items.length) return;
    const items = this.items;
    this.items = [];
    this.send(items);
  }

  get size(): number {
    return this.items.length;
  }
}
