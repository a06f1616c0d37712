import jwt from "jsonwebtoken";
import { displayKey, generateApiKey, hashApiKey, looksLikeApiKey } from "../../../../lib/auth/keys";
import { signToken, verifyToken } from "../../../../lib/auth/jwt";
import { generatePassword, hashPassword, verifyPassword } from "../../../../lib/auth/passwords";
import { accessFor, routePath, ROUTES } from "../../../../lib/auth/routes";
import { WindowCounter } from "../../../../lib/auth/throttle";
import { apiKeyFrom, bearer } from "../../../../lib/http/credentials";
import { toOpenAIError } from "../../../../lib/openai/errors";
import { gatewaySettings } from "../../../../services/api/routes";

describe("passwords", () => {
  test("scrypt hashes are salted and verify only the right password", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword("correct horse", a)).toBe(true);
    expect(await verifyPassword("correct hors", a)).toBe(false);
    expect(await verifyPassword("x", "md5$abc")).toBe(false);
  });

  test("generated passwords are long and differ", () => {
    const p = generatePassword();
    expect(p.length).toBeGreaterThanOrEqual(24);
    expect(generatePassword()).not.toBe(p);
  });
});

describe("API keys", () => {
  test("format, hash and preview", () => {
    const k = generateApiKey();
    expect(looksLikeApiKey(k)).toBe(true);
    expect(looksLikeApiKey(`${k}x`)).toBe(false);
    expect(hashApiKey(k)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiKey(k)).toBe(hashApiKey(k));
    expect(displayKey(k)).toBe(`${k.slice(0, 7)}…${k.slice(-4)}`);
    expect(generateApiKey()).not.toBe(k);
  });
});

describe("JWT", () => {
  const secret = "s".repeat(40);
  const user = { id: "u1", username: "ann", role: "viewer" as const };

  test("round trip with claims", () => {
    const { token } = signToken(user, secret, 60);
    expect(verifyToken(token, secret)).toMatchObject({ sub: "u1", username: "ann", role: "viewer" });
  });

  test("other algorithms, expiry and tampering are 401s that say why", () => {
    const hs512 = jwt.sign({ username: "ann" }, secret, { algorithm: "HS512", subject: "u1", jwtid: "j" });
    const none = jwt.sign({ username: "ann" }, "", { algorithm: "none", subject: "u1", jwtid: "j" });
    const expired = jwt.sign({ exp: 1 }, secret, { algorithm: "HS256", subject: "u1", jwtid: "j" });
    const status = (t: string) => {
      try {
        verifyToken(t, secret);
        return 200;
      } catch (err) {
        return toOpenAIError(err);
      }
    };
    expect(status(hs512)).toMatchObject({ status: 401, body: { error: { code: "invalid_token" } } });
    expect(status(none)).toMatchObject({ status: 401 });
    expect(status(expired)).toMatchObject({ status: 401, body: { error: { code: "token_expired" } } });
    expect(status(signToken(user, secret, 60).token.slice(0, -2) + "xx")).toMatchObject({ status: 401 });
  });
});

describe("WindowCounter", () => {
  test("counts within a window and starts over after it", () => {
    const c = new WindowCounter(1000);
    expect([c.hit("k", 0), c.hit("k", 10), c.hit("k", 999)]).toEqual([1, 2, 3]);
    expect(c.retryAfterSecs("k", 500)).toBe(1);
    expect(c.count("k", 1000)).toBe(0);
    expect(c.hit("k", 1000)).toBe(1);
    c.reset("k");
    expect(c.count("k", 1001)).toBe(0);
  });
});

describe("credentials from headers", () => {
  test("Bearer and X-API-Key", () => {
    expect(bearer({ authorization: "Bearer abc" })).toBe("abc");
    expect(bearer({ authorization: "bearer  abc " })).toBe("abc");
    expect(bearer({ authorization: "Basic abc" })).toBeUndefined();
    expect(bearer({ authorization: `Bearer ${"a".repeat(5000)}` })).toBeUndefined();
    expect(apiKeyFrom({ "x-api-key": "sk-1" })).toBe("sk-1");
    expect(apiKeyFrom({ authorization: "Bearer sk-2" })).toBe("sk-2");
    expect(apiKeyFrom({})).toBeUndefined();
  });
});

describe("route table", () => {
  test("every route the api serves is in the table, and every table row is served", () => {
    const served: string[] = [];
    const routes = gatewaySettings().routes as Array<{ path: string; aliases: Record<string, unknown> }>;
    for (const r of routes) {
      for (const alias of Object.keys(r.aliases)) {
        const [method, p] = alias.split(" ");
        served.push(`${method} ${routePath(`${r.path}/${p}`)}`);
      }
    }
    expect(served.sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  test("management mutations need an admin; inference needs a key; only health, login and the dashboard's files are open", () => {
    for (const r of ROUTES) {
      if (r.path.startsWith("/v1/") || r.path === "/api/chat" || r.path === "/api/generate")
        expect(r.access).toBe("apiKey");
      // an agent's heartbeat carries its node token; metrics take a scrape token or a login
      else if (r.path === "/api/health") expect(r.access).toBe("node");
      else if (r.path.startsWith("/metrics")) expect(r.access).toBe("metrics");
      else if (r.access === "public")
        expect(["/health", "/api/auth/login", "/", "/dashboard", "/dashboard/*path"]).toContain(r.path);
      // the dashboard's playground chats with a login instead of a key
      else if (r.path.startsWith("/api/playground/")) expect(r.access).toBe("user");
      // any login makes and revokes keys for its own use (the handler holds it to its own)
      else if (["POST /api/api-keys", "DELETE /api/api-keys/:id"].includes(`${r.method} ${r.path}`))
        expect(r.access).toBe("user");
      else if (r.method !== "GET" && !r.path.startsWith("/api/auth/")) expect(r.access).toBe("admin");
    }
    expect(accessFor("GET", "/nope")).toBeUndefined();
  });
});
