/**
 * A one-shot digest of a string: `crypto.hash` (Node ≥ 20.12), about 2.5×
 * faster than `createHash().update().digest()` for the short inputs hashed on
 * every request (an API key, a conversation's opening), which builds a Hash
 * object each time; the same digest either way.
 */
import crypto from "node:crypto";

type Encoding = "hex" | "base64url";

const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: Encoding) => string }).hash;

export function digest(algorithm: "sha1" | "sha256", data: string, encoding: Encoding): string {
  return oneShot ? oneShot(algorithm, data, encoding) : crypto.createHash(algorithm).update(data).digest(encoding);
}
