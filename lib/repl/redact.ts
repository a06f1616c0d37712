/** Credentials out of what the ops console prints (broker and transporter options). */

const SECRET_KEY = /^(pass|password|token|secret|nkey|seed|jwt|user_?jwt|credentials|authenticator|api_?key)$/i;

/** A URL's `user:password@` masked. */
export function maskUrl(url: string): string {
  return url.replace(/\/\/[^@/\s"]*@/g, "//***@");
}

/**
 * A copy of `value` with URL credentials masked and secret-named fields set
 * to "***". Functions and class instances other than plain objects and arrays
 * are kept as they are (the REPL prints them as such).
 */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string") return maskUrl(value);
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return value;
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, seen));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined && v !== "" ? "***" : redact(v, seen);
  }
  return out;
}
