/**
 * Node tokens: the secret an external agent sends with its heartbeats
 * (`POST /api/health`). Shown once when the runtime is registered; only a
 * SHA-256 hash is kept.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { digest } from "./digest";

const TOKEN_RE = /^nt-[A-Za-z0-9_-]{43}$/;

export function generateNodeToken(): string {
  return `nt-${randomBytes(32).toString("base64url")}`;
}

export function looksLikeNodeToken(token: string): boolean {
  return TOKEN_RE.test(token);
}

export function hashNodeToken(token: string): string {
  return digest("sha256", token, "hex");
}

/** Whether `token` is the one whose hash is `hash` (constant time). */
export function nodeTokenMatches(token: string, hash: string | undefined): boolean {
  if (!hash || !looksLikeNodeToken(token)) return false;
  const a = Buffer.from(hashNodeToken(token), "hex");
  const b = Buffer.from(hash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}
