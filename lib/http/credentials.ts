/** Credentials from request headers. Nothing here logs or echoes them. */
import type { IncomingHttpHeaders } from "node:http";

const MAX_CREDENTIAL_LENGTH = 4096;

function single(v: string | string[] | undefined): string | undefined {
  if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
  return v;
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearer(headers: IncomingHttpHeaders): string | undefined {
  const auth = single(headers.authorization);
  if (!auth || auth.length > MAX_CREDENTIAL_LENGTH) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  return m?.[1];
}

/** An API key from `Authorization: Bearer` or `X-API-Key`. */
export function apiKeyFrom(headers: IncomingHttpHeaders): string | undefined {
  const fromHeader = single(headers["x-api-key"]);
  if (fromHeader && fromHeader.length <= MAX_CREDENTIAL_LENGTH) return fromHeader.trim();
  return bearer(headers);
}
