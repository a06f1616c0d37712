/** The JWT secret: from the environment, else generated once and kept in the data dir (mode 0600). */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/** A new secret: 48 random bytes. */
export const newSecret = () => randomBytes(48).toString("base64url");

export function loadOrCreateSecret(dataDir: string, fromEnv: string | undefined): string {
  if (fromEnv) {
    if (fromEnv.length < 32) throw new Error("LLM_ROUTER_JWT_SECRET must be at least 32 characters");
    return fromEnv;
  }
  if (dataDir === ":memory:") return newSecret();
  const file = path.join(dataDir, "jwt-secret");
  if (fs.existsSync(file)) return fs.readFileSync(file, "utf8").trim();
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = newSecret();
  // wx: never overwrite a secret another process wrote first
  fs.writeFileSync(file, secret, { mode: 0o600, flag: "wx" });
  return secret;
}
