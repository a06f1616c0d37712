/**
 * Label values that come from clients (model names) must not grow `/metrics`
 * without bound: a model the router could not route to shares the value
 * `unknown`, and past `max` distinct values the rest share `other`. Values
 * are cut to a length that any real model id fits in.
 */
export const UNKNOWN_LABEL = "unknown";
export const OTHER_LABEL = "other";

export class BoundedLabels {
  private readonly seen = new Set<string>();

  constructor(
    private readonly max = 200,
    private readonly maxLength = 128,
  ) {}

  /** The label value for `value`; `known` is false for a name the router never served (a 404, nothing routed). */
  value(value: string | null, known: boolean): string {
    if (!value || !known) return UNKNOWN_LABEL;
    const v = value.length > this.maxLength ? value.slice(0, this.maxLength) : value;
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return OTHER_LABEL;
    this.seen.add(v);
    return v;
  }

  get size(): number {
    return this.seen.size;
  }
}
