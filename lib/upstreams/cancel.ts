/**
 * A call's cancellation, cheap to make: a Node AbortController and its
 * signal cost about 3 µs to create (an EventTarget), and every request to a
 * runtime made one, most of them never aborted. This one is a flag and a
 * list of listeners, shaped as the part of an AbortSignal a call on undici's
 * dispatch API reads (`aborted`, `reason`, the `abort` listeners); a real
 * AbortSignal that follows it is made only when an API needs one (a
 * streamed call, through undici's `request`).
 */
export class Cancel {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Array<() => void> | null = null;
  private controller: AbortController | null = null;

  /** Cancels: the listeners run once, and the signal (made or to be made) is aborted with the same reason. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new DOMException("This operation was aborted", "AbortError");
    this.controller?.abort(this.reason);
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners) for (const l of listeners) l();
  }

  addEventListener(_type: "abort", listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  /** An AbortSignal that follows this cancellation, made when first asked for. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}

/** What a call on undici's dispatch API reads of its cancellation: an AbortSignal or a Cancel. */
export interface AbortLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}
