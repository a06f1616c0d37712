/**
 * API keys: `sk-` + 43 base64url characters (256 bits). Only a SHA-256 hash is
 * stored (a fast hash is right for a high-entropy secret), plus a short prefix
 * to show in lists.
 */
import { randomBytes } from "node:crypto";
import { digest } from "./digest";
import type { Grant } from "../quota/quota";

const KEY_RE = /^sk-[A-Za-z0-9_-]{43}$/;

export function generateApiKey(): string {
  return `sk-${randomBytes(32).toString("base64url")}`;
}

export function looksLikeApiKey(key: string): boolean {
  return KEY_RE.test(key);
}

export function hashApiKey(key: string): string {
  return digest("sha256", key, "hex");
}

/** What the api needs to know about the key of a request. */
export interface KeyIdentity {
  id: string;
  name: string;
  owner: string;
  allowedModels: string[] | null;
  rateLimitRpm: number | null;
  /** Whether the key or its user has limits: its requests are then admitted one by one, never from a cache. */
  limited?: boolean;
  /** What it may be used for (lib/auth/scopes.ts); null: inference. */
  scopes?: string[] | null;
  /** The admission of the request it came with, when it has limits (lib/quota/quota.ts). */
  grant?: Grant;
  /** Its place in the router's wait queue (lib/routing/priority.ts: higher first); absent: normal. */
  priority?: number;
  /** Gateways keep a confirmed key until then at most (lib/auth/key-cache.ts). */
  expiresAt: string | null;
}

/** What a list shows of a key: `sk-AbCd…wxyz`. */
export function displayKey(key: string): string {
  return `${key.slice(0, 7)}…${key.slice(-4)}`;
}
