/**
 * Holds a response's end: `res.end(...)` called by whoever answers is kept
 * back (the bytes written before it have gone) until `release`, which ends
 * the response as it was asked to. The api holds an answer's last bytes
 * while the request's history record is made durable, so a client that has
 * its whole answer knows the record exists.
 */
import type { ServerResponse } from "node:http";

export interface HeldEnd {
  /** Ends the response as `res.end` was called (nothing, if it was not). Once. */
  release(): void;
}

export function holdEnd(res: ServerResponse): HeldEnd {
  const end = res.end;
  let asked: unknown[] | null = null;
  res.end = function heldEnd(this: ServerResponse, ...args: unknown[]) {
    asked ??= args;
    return this;
  } as ServerResponse["end"];
  return {
    release() {
      if (res.end === end) return;
      res.end = end;
      if (asked) (end as (...a: unknown[]) => ServerResponse).apply(res, asked);
    },
  };
}
