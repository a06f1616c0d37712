/**
 * The text a value was parsed from, kept beside it, so that relaying an
 * upstream's answer unchanged does not serialise again what was just parsed
 * (a runtime's stream chunks, its chat answer). Held under a symbol: JSON and
 * Object.keys never see it. A plain assignment, not a non-enumerable
 * property: `Object.defineProperty` cost a third as much as the parse itself,
 * on every chunk of a stream. A spread copy or Object.assign does copy it, so
 * the text is kept with the value it belongs to, and a copy (made to change
 * something) is serialised afresh. Whoever changes such a value afterwards
 * calls `changed`, and the value is serialised as usual.
 */
const RAW = Symbol("raw JSON text");

/** One line of text (two string searches: cheaper than a regular expression, on every chunk of a stream). */
const oneLine = (text: string) => !text.includes("\n") && !text.includes("\r");

interface Kept {
  text: string;
  /** The value the text says: a copy carries the same record, and is not it. */
  of: object;
}

type Carrier = { [RAW]?: Kept };

/** Parses `text`, keeping it with the result when it is an object written on one line (fit for an SSE `data:` line). */
export function parseKeepingText(text: string): unknown {
  const value = JSON.parse(text) as unknown;
  keepText(value, text);
  return value;
}

/**
 * Keeps `text` with `value`, parsed from it elsewhere (a request body, by
 * body-parser), under the same rule as `parseKeepingText`: an object, one line.
 */
export function keepText(value: unknown, text: string): void {
  if (value !== null && typeof value === "object" && oneLine(text)) (value as Carrier)[RAW] = { text, of: value };
}

/** Keeps `text`, made by `JSON.stringify` of `value` (or the same bytes otherwise): always one line. */
export function keepJsonText(value: object, text: string): void {
  (value as Carrier)[RAW] = { text, of: value };
}

/** `value` is about to change: its kept text no longer says it. */
export function changed(value: unknown): void {
  if (value !== null && typeof value === "object" && (value as Carrier)[RAW] !== undefined)
    (value as Carrier)[RAW] = undefined;
}

/** The text `value` was parsed from, when it still says it. */
export function keptText(value: unknown): string | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const kept = (value as Carrier)[RAW];
  return kept !== undefined && kept.of === value ? kept.text : undefined;
}

/** JSON of `value`: the text it was parsed from when that still says it. */
export function toJson(value: unknown): string {
  if (value !== null && typeof value === "object") {
    const kept = (value as Carrier)[RAW];
    if (kept !== undefined && kept.of === value) return kept.text;
  }
  return JSON.stringify(value);
}

/**
 * The JSON text of a non-empty object with one more field, put first (the
 * object must not have it already): the text is not parsed or serialised.
 */
export function withFirstField(text: string, key: string, value: unknown): string {
  const open = text.indexOf("{") + 1;
  return `${text.slice(0, open)}${JSON.stringify(key)}:${JSON.stringify(value)},${text.slice(open)}`;
}
