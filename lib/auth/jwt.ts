/** JWTs for the management API: HS256 only, pinned on both sign and verify. */
import { randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import { apiError } from "../openai/errors";

export interface TokenClaims {
  sub: string;
  username: string;
  role: "admin" | "viewer";
  jti: string;
  exp: number;
  iat: number;
}

export const MAX_TOKEN_LENGTH = 4096;

export function signToken(
  user: { id: string; username: string; role: "admin" | "viewer" },
  secret: string,
  expiresInSecs: number,
): { token: string; expiresAt: string } {
  const token = jwt.sign({ username: user.username, role: user.role }, secret, {
    algorithm: "HS256",
    subject: user.id,
    jwtid: randomUUID(),
    expiresIn: expiresInSecs,
  });
  return { token, expiresAt: new Date(Date.now() + expiresInSecs * 1000).toISOString() };
}

/** Verifies signature, algorithm and expiry; any failure is a 401 that says which. */
export function verifyToken(token: string, secret: string): TokenClaims {
  if (token.length > MAX_TOKEN_LENGTH) throw apiError(401, "The token is too long.", "invalid_token");
  try {
    const claims = jwt.verify(token, secret, { algorithms: ["HS256"] });
    if (typeof claims !== "object" || typeof claims.sub !== "string" || typeof claims.jti !== "string") {
      throw new Error("missing claims");
    }
    return claims as TokenClaims;
  } catch (err) {
    if (err instanceof jwt.TokenExpiredError)
      throw apiError(401, "The token has expired; log in again.", "token_expired");
    throw apiError(401, "The token is not valid.", "invalid_token");
  }
}
