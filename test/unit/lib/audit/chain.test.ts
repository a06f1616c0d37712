import {
  canonicalJson,
  chainEntry,
  GENESIS,
  hashEntry,
  looksSecret,
  redactSecrets,
  REDACTED,
  verifyChain,
  type AuditEntry,
  type AuditRecord,
} from "../../../../lib/audit/chain";

const record = (i: number, changes: unknown = { name: `n${i}` }): AuditRecord => ({
  ts: `2026-01-01T00:00:0${i}.000Z`,
  actor: "admin",
  actor_role: "admin",
  ip: "127.0.0.1",
  action: "POST /api/nodes/:id/drain",
  target: `node-${i}`,
  status: 200,
  changes,
});

function chain(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 1; i <= n; i++) out.push(chainEntry(record(i), out[out.length - 1] ?? null));
  return out;
}

/** A copy as the store would give it back (JSON), so edits never touch the original. */
const stored = (entries: AuditEntry[]): AuditEntry[] => JSON.parse(JSON.stringify(entries)) as AuditEntry[];

describe("canonical JSON and hashes", () => {
  test("key order does not matter, nested included; arrays keep theirs", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
    expect(canonicalJson({ a: { c: null, d: [2, 1] }, b: 1 })).toBe(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }));
    expect(canonicalJson({ a: undefined, b: [undefined] })).toBe('{"b":[null]}');
  });

  test("the hash covers every field but itself", () => {
    const [e] = chain(1);
    expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashEntry(e)).toBe(e.hash);
    expect(hashEntry({ ...e, hash: "anything" })).toBe(e.hash);
    for (const field of ["seq", "ts", "actor", "actor_role", "ip", "action", "target", "status", "changes", "prev"]) {
      const changed = { ...e, [field]: field === "seq" || field === "status" ? 7 : "x" };
      expect(hashEntry(changed)).not.toBe(e.hash);
    }
  });
});

describe("verifyChain", () => {
  test("a chain of 5 verifies, numbered from 1, the first linked to GENESIS", () => {
    const entries = chain(5);
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(entries[0].prev).toBe(GENESIS);
    expect(entries[3].prev).toBe(entries[2].hash);
    expect(verifyChain(stored(entries))).toEqual({ ok: true, count: 5, head: entries[4].hash });
    expect(verifyChain([])).toEqual({ ok: true, count: 0, head: null });
  });

  test("pages verify going on from the page before", () => {
    const entries = chain(5);
    expect(verifyChain(entries.slice(0, 2))).toMatchObject({ ok: true, count: 2 });
    expect(verifyChain(entries.slice(2), entries[1])).toEqual({ ok: true, count: 3, head: entries[4].hash });
    expect(verifyChain(entries.slice(3), entries[1])).toEqual({ ok: false, seq: 4, reason: "seq gap" });
  });

  test("an entry's changes edited in the store: fails at that entry", () => {
    const entries = stored(chain(5));
    (entries[2].changes as { name: string }).name = "edited";
    expect(verifyChain(entries)).toEqual({ ok: false, seq: 3, reason: "hash mismatch" });
  });

  test("an entry edited and its hash made again: fails at the next, whose link is broken", () => {
    const entries = stored(chain(5));
    entries[2].status = 500;
    entries[2].hash = hashEntry(entries[2]);
    expect(verifyChain(entries)).toEqual({ ok: false, seq: 4, reason: "broken link" });
  });

  test("an entry deleted: fails at the next", () => {
    const entries = stored(chain(5));
    entries.splice(2, 1);
    expect(verifyChain(entries)).toEqual({ ok: false, seq: 4, reason: "seq gap" });
    const first = stored(chain(5)).slice(1);
    expect(verifyChain(first)).toEqual({ ok: false, seq: 2, reason: "seq gap" });
  });

  test("two entries with the same seq (a fork): fails at the second", () => {
    const entries = chain(3);
    const fork = chainEntry(record(9), entries[1]);
    expect(verifyChain([...entries, fork])).toEqual({ ok: false, seq: 3, reason: "seq gap" });
  });
});

describe("redactSecrets", () => {
  const PLAIN = [
    "hunter2-password",
    "sk-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
    "nt-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
    "hf_abcdefghijklmnopqrstuvwxyz",
    "the-token-value",
    "s3cr3t",
  ];

  test("secret-looking names, any case and style, at any depth", () => {
    for (const name of [
      "password",
      "new_password",
      "current_password",
      "Password",
      "api_key",
      "apiKey",
      "X-API-Key",
      "key",
      "token",
      "HF_TOKEN",
      "hfToken",
      "secret",
      "client_secret",
      "Authorization",
      "credentials",
    ]) {
      expect({ name, secret: looksSecret(name) }).toEqual({ name, secret: true });
    }
    for (const name of ["username", "name", "max_tokens", "role", "allowed_models", "base_url", "monkey"]) {
      expect({ name, secret: looksSecret(name) }).toEqual({ name, secret: false });
    }
  });

  test("secrets never appear, whatever their place; the rest is kept", () => {
    const body = {
      username: "alice",
      password: PLAIN[0],
      role: "viewer",
      max_tokens: 5,
      nested: { list: [{ Api_Key: PLAIN[1] }, { note: PLAIN[2] }], env: { HF_TOKEN: PLAIN[3] } },
      headers: [["x", `Bearer ${PLAIN[4]}`]],
      base_url: `https://user:${PLAIN[5]}@host.example/v1`,
      misc: PLAIN[1],
      cleared: { api_key: null },
    };
    const out = redactSecrets(body);
    const text = JSON.stringify(out);
    for (const secret of PLAIN) expect(text).not.toContain(secret);
    expect(out).toEqual({
      username: "alice",
      password: REDACTED,
      role: "viewer",
      max_tokens: 5,
      nested: { list: [{ Api_Key: REDACTED }, { note: REDACTED }], env: { HF_TOKEN: REDACTED } },
      headers: [["x", REDACTED]],
      base_url: "https://***@host.example/v1",
      misc: REDACTED,
      cleared: { api_key: null },
    });
    // an object under a secret name goes whole
    expect(redactSecrets({ credentials: { user: "u", pass: "p" } })).toEqual({ credentials: REDACTED });
    expect(redactSecrets(null)).toBeNull();
    expect(redactSecrets([1, "a"])).toEqual([1, "a"]);
  });

  test("a chain of redacted bodies verifies and holds no secret", () => {
    const entries: AuditEntry[] = [];
    for (const [i, secret] of PLAIN.entries()) {
      const changes = redactSecrets({ username: `u${i}`, password: secret, nested: { token: secret } });
      entries.push(chainEntry(record(i, changes), entries[entries.length - 1] ?? null));
    }
    expect(verifyChain(stored(entries))).toMatchObject({ ok: true, count: PLAIN.length });
    const text = JSON.stringify(entries);
    for (const secret of PLAIN) expect(text).not.toContain(secret);
  });
});
