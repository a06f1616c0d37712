import { createHash } from "node:crypto";
import { digest } from "../../../../lib/auth/digest";

describe("digest", () => {
  test.each([
    ["sha256", "hex"],
    ["sha1", "base64url"],
  ] as const)("%s in %s is createHash's digest of the UTF-8 text", (algorithm, encoding) => {
    for (const text of ["", "sk-abc", 'model\0[{"role":"user","content":"héllo ✓ 🙂"}]']) {
      expect(digest(algorithm, text, encoding)).toBe(createHash(algorithm).update(text).digest(encoding));
    }
  });
});
