/**
 * The audit log's hash chain (services/audit.service.ts): every entry holds
 * the hash of the one before it (`prev`) and its own (`hash`, SHA-256 of a
 * canonical JSON of every other field), numbered without gaps from 1. An
 * entry edited in the store no longer matches its hash; one deleted leaves a
 * gap before the next. Whoever can write the store can still rewrite the
 * whole chain from some entry on, or drop its newest entries: `verify`'s
 * `head` (the newest hash), kept somewhere else, catches that. Pure: no I/O.
 */
import { createHash } from "node:crypto";
import { maskUrl } from "../repl/redact";

export interface AuditEntry {
  /** 1, 2, 3…: the entry's place in the chain. */
  seq: number;
  /** When the request was answered (ISO 8601). */
  ts: string;
  /** The login's username; null when none was known. */
  actor: string | null;
  actor_role: string | null;
  ip: string;
  /** "METHOD /route/pattern", e.g. "POST /api/nodes/:id/drain". */
  action: string;
  /** The path's parameters (`:id`…), or null. */
  target: string | null;
  /** The answer's HTTP status. */
  status: number;
  /** The request body, secrets masked (redactSecrets); null without one. */
  changes: unknown;
  /** The previous entry's hash; GENESIS for the first. */
  prev: string;
  hash: string;
}

/** What is recorded: an entry before it has its place in the chain. */
export type AuditRecord = Omit<AuditEntry, "seq" | "prev" | "hash">;

/** The `prev` of the first entry. */
export const GENESIS = "0".repeat(64);

/** Where a chain (or a page of one) goes on from: the last entry's seq and hash. */
export interface ChainLink {
  seq: number;
  hash: string;
}

export const CHAIN_START: ChainLink = { seq: 0, hash: GENESIS };

export type ChainCheck =
  | { ok: true; count: number; head: string | null }
  | { ok: false; seq: number; reason: "hash mismatch" | "broken link" | "seq gap" };

/** JSON with every object's keys sorted (arrays keep their order): one text for one value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const fields = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${fields.join(",")}}`;
}

/** SHA-256 (hex) of the canonical JSON of every field but `hash`. */
export function hashEntry(entry: Omit<AuditEntry, "hash"> & { hash?: string }): string {
  const { hash: _ignored, ...fields } = entry;
  void _ignored;
  return createHash("sha256").update(canonicalJson(fields)).digest("hex");
}

/** `record` as the entry after `last` (null: the first). */
export function chainEntry(record: AuditRecord, last: ChainLink | null): AuditEntry {
  const from = last ?? CHAIN_START;
  const entry = { ...record, seq: from.seq + 1, prev: from.hash };
  return { ...entry, hash: hashEntry(entry) };
}

/**
 * Checks entries sorted by seq, going on from `from` (the chain's start, or
 * the last entry of the page before): the first entry that fails, and why.
 */
export function verifyChain(entries: AuditEntry[], from: ChainLink = CHAIN_START): ChainCheck {
  let last = from;
  for (const e of entries) {
    if (hashEntry(e) !== e.hash) return { ok: false, seq: e.seq, reason: "hash mismatch" };
    if (e.seq !== last.seq + 1) return { ok: false, seq: e.seq, reason: "seq gap" };
    if (e.prev !== last.hash) return { ok: false, seq: e.seq, reason: "broken link" };
    last = { seq: e.seq, hash: e.hash };
  }
  return { ok: true, count: entries.length, head: last.seq > 0 ? last.hash : null };
}

export const REDACTED = "[redacted]";

/** Words of a field name that say it holds a secret (`new_password`, `hfToken`, `X-API-Key`, `Authorization`). */
const SECRET_WORDS = new Set([
  "password",
  "passwd",
  "pass",
  "pwd",
  "passphrase",
  "secret",
  "secrets",
  "token",
  "key",
  "apikey",
  "authorization",
  "credential",
  "credentials",
  "cookie",
  "jwt",
  "bearer",
]);

/** Whether a field's name looks like it holds a secret (any case, snake, kebab or camel case). */
export function looksSecret(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  // `hftoken`, `newpassword`, `apikey`… as one word; `max_tokens` is no secret
  return words.some(
    (w) => SECRET_WORDS.has(w) || /(password|passwd|secret|token|apikey|privatekey|credentials?)$/.test(w),
  );
}

/** A string value that is a credential whatever its field is called. */
function secretValue(s: string): boolean {
  return (
    // this router's API keys and node tokens, OpenAI's and Anthropic's keys
    /^(sk|nt)-[A-Za-z0-9_-]{16,}$/.test(s) ||
    /^bearer\s/i.test(s) ||
    /^hf_[A-Za-z0-9]{16,}$/.test(s) ||
    /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/.test(s)
  );
}

const MAX_DEPTH = 32;

/**
 * A copy of a request body with every field whose name looks secret masked
 * as "[redacted]" (null stays null: a cleared secret), at any depth, and
 * credentials masked wherever they are: API keys, node tokens, bearer
 * tokens, JWTs, Hugging Face tokens, a URL's `user:password@`.
 */
export function redactSecrets(body: unknown, depth = 0): unknown {
  if (typeof body === "string") return secretValue(body) ? REDACTED : maskUrl(body);
  if (body === null || typeof body !== "object") return body;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(body)) return body.map((v) => redactSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    out[k] = looksSecret(k) && v !== null && v !== undefined ? REDACTED : redactSecrets(v, depth + 1);
  }
  return out;
}
