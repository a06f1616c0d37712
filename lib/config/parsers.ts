/**
 * How the text of an environment variable becomes a typed value. A parser
 * throws an InvalidValue saying what it expected ("must be …"); the reader
 * adds the variable's name and, unless it is a secret, the text it got.
 */
import os from "node:os";
import path from "node:path";

export class InvalidValue extends Error {}

export interface Parser<T> {
  /** What the variable takes, for the docs: "whole number ≥ 1", "URL (http, https)"… */
  readonly accepts: string;
  /** The value of a set (non-empty) variable; throws an InvalidValue. */
  parse(raw: string): T;
  /** A value as it would be written in the variable (the docs show defaults this way). */
  show(value: T): string;
}

const plain = (v: unknown) => String(v);

/** " ≥ 1", " from 0 to 65535"…; `ascii` for messages (">= 1"). */
function range(min: number | undefined, max: number | undefined, ascii = false): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` ${ascii ? ">=" : "≥"} ${min}`;
  if (max !== undefined) return ` ${ascii ? "<=" : "≤"} ${max}`;
  return "";
}

function checkRange(n: number, what: string, min?: number, max?: number): number {
  if ((min !== undefined && n < min) || (max !== undefined && n > max))
    throw new InvalidValue(`must be a ${what}${range(min, max, true)}`);
  return n;
}

/** A whole number, for counts and sizes. */
export function int(opts: { min?: number; max?: number } = {}): Parser<number> {
  const what = "whole number";
  return {
    accepts: `${what}${range(opts.min, opts.max)}`,
    parse(raw) {
      if (!/^[+-]?\d+$/.test(raw.trim())) throw new InvalidValue(`must be a ${what}${range(opts.min, opts.max, true)}`);
      return checkRange(Number(raw), what, opts.min, opts.max);
    },
    show: plain,
  };
}

/** A number of `unit` (fractions allowed), for durations. */
export function num(opts: { unit: string; min?: number; max?: number }): Parser<number> {
  const what = `number of ${opts.unit}`;
  return {
    accepts: `${what}${range(opts.min, opts.max)}`,
    parse(raw) {
      const n = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(n)) throw new InvalidValue(`must be a ${what}${range(opts.min, opts.max, true)}`);
      return checkRange(n, what, opts.min, opts.max);
    },
    show: plain,
  };
}

/** Seconds, fractions allowed. */
export const seconds = (opts: { min?: number; max?: number } = {}) => num({ unit: "seconds", ...opts });

export function bool(): Parser<boolean> {
  return {
    accepts: "`true` or `false`",
    parse(raw) {
      if (/^(1|true|yes|on)$/i.test(raw.trim())) return true;
      if (/^(0|false|no|off)$/i.test(raw.trim())) return false;
      throw new InvalidValue("must be true or false (or 1/0, yes/no, on/off)");
    },
    show: plain,
  };
}

/** Any text; `trim` drops surrounding white space (keys pasted with a newline). */
export function str(opts: { trim?: boolean } = {}): Parser<string> {
  return { accepts: "text", parse: (raw) => (opts.trim ? raw.trim() : raw), show: plain };
}

/** One of `values`, case-insensitive (the value is lowercased). */
export function oneOf<const V extends string>(values: readonly V[]): Parser<V> {
  const list = values.join(", ");
  return {
    accepts: `one of ${values.map((v) => `\`${v}\``).join(", ")}`,
    parse(raw) {
      const v = raw.trim().toLowerCase();
      if (!(values as readonly string[]).includes(v)) throw new InvalidValue(`must be one of ${list}`);
      return v as V;
    },
    show: plain,
  };
}

/** Comma-separated items, trimmed, empty ones dropped. */
export function list(): Parser<string[]> {
  return {
    accepts: "comma-separated list",
    parse: (raw) =>
      raw
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    show: (v) => v.join(","),
  };
}

/** An absolute URL with one of these schemes; trailing slashes are dropped. */
export function url(schemes: readonly string[] = ["http", "https"]): Parser<string> {
  const what = `must be a URL (${schemes.map((s) => `${s}://`).join(", ")})`;
  return {
    accepts: `URL (${schemes.map((s) => `\`${s}://\``).join(", ")})`,
    parse(raw) {
      let u: URL;
      try {
        u = new URL(raw.trim());
      } catch {
        throw new InvalidValue(what);
      }
      if (!schemes.includes(u.protocol.slice(0, -1))) throw new InvalidValue(what);
      return raw.trim().replace(/\/+$/, "");
    },
    show: plain,
  };
}

/** A byte size as body-parser takes it: `512kb`, `4mb`, `1048576`. */
export function byteSize(): Parser<string> {
  return {
    accepts: "size (`512kb`, `4mb`, bytes)",
    parse(raw) {
      const v = raw.trim().toLowerCase();
      if (!/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/.test(v))
        throw new InvalidValue("must be a size such as 512kb, 4mb or 1048576");
      return v;
    },
    show: plain,
  };
}

/** A memory size in bytes: `24gb`, `512mb`, `1.5g`, or a number of bytes (binary units: 1 kb = 1024 bytes). */
export function memorySize(): Parser<number> {
  const units: Record<string, number> = { "": 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
  return {
    accepts: "size (`24gb`, `512mb`, bytes)",
    parse(raw) {
      const m = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])i?b?|b)?$/.exec(raw.trim().toLowerCase());
      if (!m) throw new InvalidValue("must be a size such as 24gb, 512mb or 1073741824");
      const bytes = Math.round(Number(m[1]) * units[m[2] ?? ""]);
      if (bytes <= 0) throw new InvalidValue("must be more than 0 bytes");
      return bytes;
    },
    show: (v) => String(v),
  };
}

/** `~/x` as a path in the home directory; other paths as they are. */
export function expandHome(p: string): string {
  return p.startsWith("~") ? path.join(os.homedir(), p.slice(1)) : p;
}

/** A file or directory; a leading `~` is the home directory. */
export function filePath(): Parser<string> {
  return { accepts: "path", parse: expandHome, show: plain };
}

/** A parser of one's own: `parse` throws an InvalidValue("must be …"). */
export function custom<T>(accepts: string, parse: (raw: string) => T, show: (v: T) => string = plain): Parser<T> {
  return { accepts, parse, show };
}
