/**
 * The locked-down surface, against a started router (one process, real HTTP,
 * NeDB files in a temp data dir): the whole route table, tokens, keys, limits.
 */
import { startHubStandIn, type HubStandIn } from "../helpers/standins/hub";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import jwt from "jsonwebtoken";
import { ROUTES } from "../../lib/auth/routes";
import { routerClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";
import {
  createKey,
  login,
  ADMIN_PASSWORD,
  startCli,
  startRouter,
  tempDir,
  writeModel,
  type Proc,
} from "../helpers/procs";

const MODEL = "tiny-auth";
const SECRET = "a-test-secret-that-is-long-enough-0123456789";
const dataDir = tempDir("auth-data");
let router: { proc: Proc; url: string };
let admin: string;
let viewer: string;
let viewerId: string;
let key: string;

/** A request read whole, with a login token, an API key (as `x-api-key`) or neither. */
const call = (method: string, p: string, opts: { token?: string; key?: string; body?: unknown } = {}) =>
  routerClient(router.url, { token: opts.token }).answer(method, p, opts.body, {
    headers: opts.key ? { "x-api-key": opts.key } : {},
  });

let hub: HubStandIn;

beforeAll(async () => {
  // the model routes talk to the hub: a local stand-in
  hub = await startHubStandIn();
  const models = tempDir("auth-models");
  writeModel(models, MODEL);
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_ROUTER_DATA_DIR: dataDir,
    LLM_ROUTER_JWT_SECRET: SECRET,
    HF_BASE_URL: hub.url,
  });
  await router.proc.waitForOutput(/is online/);
  admin = await login(router.url);
  const created = await call("POST", "/api/users", {
    token: admin,
    body: { username: "vera", password: "viewer-password", role: "viewer" },
  });
  expect(created.status).toBe(201);
  viewerId = created.body.id;
  viewer = await login(router.url, "vera", "viewer-password");
  key = await createKey(router.url, { name: "walker" });
}, 60_000);

afterAll(async () => {
  await router?.proc.stop();
  await hub?.close();
});

/** A request that the route accepts once past the gate (bodies valid enough not to matter). */
function sample(method: string, p: string): { path: string; body?: unknown } {
  const concrete = p.replace("*id", MODEL).replace("*path", "app.js").replace(":id", "does-not-exist");
  const bodies: Record<string, unknown> = {
    "POST /v1/chat/completions": { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 },
    "POST /v1/completions": { model: MODEL, prompt: "hi", max_tokens: 2 },
    "POST /v1/embeddings": { model: MODEL, input: "hi" },
    "POST /api/chat": { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 },
    "POST /api/generate": { model: MODEL, prompt: "hi", max_tokens: 2 },
    "POST /api/playground/chat": { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 },
  };
  return {
    path: concrete,
    body: bodies[`${method} ${p}`] ?? (method === "GET" || method === "DELETE" ? undefined : {}),
  };
}

describe("the route table, walked whole", () => {
  const protectedRoutes = ROUTES.filter((r) => r.access !== "public");

  test.each(protectedRoutes.map((r) => [r.method, r.path, r.access]))(
    "%s %s (%s) answers 401 without credentials",
    async (method, p) => {
      const { path: url, body } = sample(method, p);
      const r = await call(method, url, { body });
      expect(r.status).toBe(401);
      expect(r.body.error).toMatchObject({ type: "authentication_error", code: expect.any(String) });
    },
  );

  test.each(ROUTES.filter((r) => r.access === "admin").map((r) => [r.method, r.path]))(
    "%s %s answers 403 to a viewer",
    async (method, p) => {
      const { path: url, body } = sample(method, p);
      const r = await call(method, url, { token: viewer, body });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("admin_required");
    },
  );

  // node routes need a registered runtime's token: test/integration/external.test.ts
  test.each(ROUTES.filter((r) => r.access !== "node").map((r) => [r.method, r.path, r.access]))(
    "%s %s (%s) gets past the gate with the right credentials",
    async (method, p, access) => {
      const { path: url, body } = sample(method, p);
      // logout ends the token it is given: give it one of its own
      const userToken = p === "/api/auth/logout" ? await login(router.url, "vera", "viewer-password") : viewer;
      const creds =
        access === "apiKey" ? { key } : access === "public" ? {} : { token: access === "admin" ? admin : userToken };
      const r = await call(method, url, { ...creds, body });
      expect([401, 403]).not.toContain(r.status);
      expect(r.status).toBeLessThan(500);
    },
  );

  test("a login token is not an API key, and an API key is not a login", async () => {
    expect((await call("GET", "/v1/models", { token: admin })).status).toBe(401);
    expect((await call("GET", "/api/nodes", { token: key })).status).toBe(401);
  });

  test("only /health answers without credentials", async () => {
    const r = await call("GET", "/health");
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("ok");
  });
});

describe("login tokens", () => {
  const claims = () => jwt.decode(admin) as jwt.JwtPayload;

  test("HS256, with expiry, subject and id", () => {
    const header = JSON.parse(Buffer.from(admin.split(".")[0], "base64url").toString());
    expect(header.alg).toBe("HS256");
    expect(claims().exp! - claims().iat!).toBe(86400);
    expect(claims().jti).toEqual(expect.any(String));
  });

  test.each([
    [
      "a tampered payload",
      () => {
        const [h, , s] = admin.split(".");
        const p = Buffer.from(JSON.stringify({ ...claims(), role: "admin", username: "mallory" })).toString(
          "base64url",
        );
        return `${h}.${p}.${s}`;
      },
    ],
    [
      "alg none",
      () =>
        jwt.sign({ username: "admin", role: "admin" }, "", { algorithm: "none", subject: claims().sub, jwtid: "x" }),
    ],
    [
      "another algorithm with the right secret",
      () =>
        jwt.sign({ username: "admin", role: "admin" }, SECRET, {
          algorithm: "HS512",
          subject: claims().sub,
          jwtid: "y",
          expiresIn: 60,
        }),
    ],
    [
      "the wrong secret",
      () =>
        jwt.sign({ username: "admin", role: "admin" }, "x".repeat(40), {
          algorithm: "HS256",
          subject: claims().sub,
          jwtid: "z",
          expiresIn: 60,
        }),
    ],
    [
      "an expired token",
      () =>
        jwt.sign({ username: "admin", role: "admin", exp: Math.floor(Date.now() / 1000) - 10 }, SECRET, {
          algorithm: "HS256",
          subject: claims().sub,
          jwtid: "w",
        }),
    ],
    ["garbage", () => "not.a.token"],
    ["an oversized token", () => "a".repeat(5000)],
  ])("%s is refused with 401", async (_name, make) => {
    const r = await call("GET", "/api/auth/me", { token: make() });
    expect(r.status).toBe(401);
    expect(r.body.error.type).toBe("authentication_error");
  });

  test("logout ends the token", async () => {
    const t = await login(router.url);
    expect((await call("GET", "/api/auth/me", { token: t })).status).toBe(200);
    expect((await call("POST", "/api/auth/logout", { token: t })).status).toBe(200);
    expect((await call("GET", "/api/auth/me", { token: t })).status).toBe(401);
  });
});

describe("users", () => {
  test("wrong password and unknown users get the same 401", async () => {
    const a = await call("POST", "/api/auth/login", { body: { username: "admin", password: "wrong-password" } });
    const b = await call("POST", "/api/auth/login", { body: { username: "nobody", password: "wrong-password" } });
    expect([a.status, b.status]).toEqual([401, 401]);
    expect(a.body.error.message).toBe(b.body.error.message);
  });

  test("non-string and oversized credentials are a 4xx, never a 500", async () => {
    for (const body of [
      { username: 5, password: [] },
      { username: "admin", password: "x".repeat(2000) },
      JSON.stringify("just a string"),
      null,
    ]) {
      const r = await call("POST", "/api/auth/login", { body });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
  });

  test("the last admin cannot be deleted or demoted", async () => {
    const me = await call("GET", "/api/auth/me", { token: admin });
    expect((await call("DELETE", `/api/users/${me.body.id}`, { token: admin })).body.error.code).toBe("last_admin");
    const demote = await call("PUT", `/api/users/${me.body.id}`, { token: admin, body: { role: "viewer" } });
    expect(demote.status).toBe(409);
  });

  test("users are listed without any password hash; unknown ids are 404", async () => {
    const list = await call("GET", "/api/users", { token: admin });
    expect(list.body.map((u: { username: string }) => u.username)).toEqual(["admin", "vera"]);
    expect(JSON.stringify(list.body)).not.toMatch(/scrypt|passwordHash/);
    expect((await call("PUT", "/api/users/nope", { token: admin, body: { role: "admin" } })).status).toBe(404);
  });

  test("a user changes their own password", async () => {
    await call("POST", "/api/users", { token: admin, body: { username: "pat", password: "first-password" } });
    const pat = await login(router.url, "pat", "first-password");
    const wrong = await call("POST", "/api/auth/password", {
      token: pat,
      body: { current_password: "nope-nope", new_password: "second-password" },
    });
    expect(wrong.status).toBe(403);
    const ok = await call("POST", "/api/auth/password", {
      token: pat,
      body: { current_password: "first-password", new_password: "second-password" },
    });
    expect(ok.status).toBe(200);
    await expect(login(router.url, "pat", "first-password")).rejects.toThrow(/401/);
    await login(router.url, "pat", "second-password");
  });

  test("repeated failed logins are throttled with 429 and Retry-After", async () => {
    await call("POST", "/api/users", { token: admin, body: { username: "target", password: "target-password" } });
    let last = await call("POST", "/api/auth/login", { body: { username: "target", password: "guess-0000" } });
    for (let i = 1; i < 12 && last.status === 401; i++) {
      last = await call("POST", "/api/auth/login", { body: { username: "target", password: `guess-${i}000` } });
    }
    expect(last.status).toBe(429);
    expect(Number(last.headers.get("retry-after"))).toBeGreaterThan(0);
    // even the right password waits now
    expect(
      (await call("POST", "/api/auth/login", { body: { username: "target", password: "target-password" } })).status,
    ).toBe(429);
  });
});

describe("API keys", () => {
  test("a key is shown once and stored only as a hash", async () => {
    const created = await call("POST", "/api/api-keys", { token: admin, body: { name: "once" } });
    expect(created.status).toBe(201);
    const k: string = created.body.key;
    expect(k).toMatch(/^sk-[A-Za-z0-9_-]{43}$/);
    const list = await call("GET", "/api/api-keys", { token: admin });
    expect(JSON.stringify(list.body)).not.toContain(k);
    expect(list.body.find((x: { id: string }) => x.id === created.body.id).key_preview).toBe(
      `${k.slice(0, 7)}…${k.slice(-4)}`,
    );
    const stored = fs.readFileSync(path.join(dataDir, "api_keys.db"), "utf8");
    expect(stored).not.toContain(k);
    expect(stored).not.toContain(k.slice(3, 20));
    expect(stored).toContain(createHash("sha256").update(k).digest("hex"));
  });

  test("a viewer sees only their own keys", async () => {
    await call("POST", "/api/api-keys", { token: admin, body: { name: "veras", owner: viewerId } });
    const mine = await call("GET", "/api/api-keys", { token: viewer });
    expect(mine.body.map((k: { name: string }) => k.name)).toEqual(["veras"]);
  });

  test("wrong, revoked and expired keys get 401", async () => {
    expect((await call("GET", "/v1/models", { key: `sk-${"A".repeat(43)}` })).status).toBe(401);
    expect((await call("GET", "/v1/models", { key: "not-a-key" })).status).toBe(401);
    const created = await call("POST", "/api/api-keys", { token: admin, body: { name: "short-lived" } });
    expect((await call("GET", "/v1/models", { key: created.body.key })).status).toBe(200);
    expect((await call("DELETE", `/api/api-keys/${created.body.id}`, { token: admin })).status).toBe(200);
    expect((await call("GET", "/v1/models", { key: created.body.key })).status).toBe(401);
    // a key cannot be made already expired; one that runs out is refused from then on
    const past = await call("POST", "/api/api-keys", {
      token: admin,
      body: { name: "old", expires_at: "2020-01-01T00:00:00Z" },
    });
    expect(past.status).toBe(400);
    expect(past.body.error).toMatchObject({ code: "invalid_value", param: "expires_at" });
    const expiring = await call("POST", "/api/api-keys", {
      token: admin,
      body: { name: "soon", expires_at: new Date(Date.now() + 1500).toISOString() },
    });
    expect((await call("GET", "/v1/models", { key: expiring.body.key })).status).toBe(200);
    const r = await waitFor(async () => {
      const res = await call("GET", "/v1/models", { key: expiring.body.key });
      return res.status === 401 ? res : null;
    });
    expect(r.body.error.code).toBe("expired_api_key");
  });

  test("an allowed-models list limits what the key sees and may use", async () => {
    const limited = await createKey(router.url, { name: "limited", allowed_models: ["something-else"] });
    expect((await call("GET", "/v1/models", { key: limited })).body.data).toEqual([]);
    const r = await call("POST", "/v1/chat/completions", {
      key: limited,
      body: sample("POST", "/v1/chat/completions").body,
    });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: "model_not_allowed", param: "model" });
  });

  test("a requests-per-minute limit answers 429 with Retry-After past it", async () => {
    const limited = await createKey(router.url, { name: "rpm", rate_limit_rpm: 3 });
    const statuses = [];
    let last;
    for (let i = 0; i < 5; i++) {
      last = await call("GET", "/v1/models", { key: limited });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(last!.body.error.type).toBe("rate_limit_error");
  });

  test("bad key fields are a 400 naming the field", async () => {
    const r = await call("POST", "/api/api-keys", { token: admin, body: { name: "x", rate_limit_rpm: -1 } });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe("rate_limit_rpm");
  });
});

describe("hygiene", () => {
  test("no password, key or token appears in the router's output", () => {
    const out = router.proc.output;
    for (const secret of [ADMIN_PASSWORD, "viewer-password", key, admin, viewer, SECRET])
      expect(out).not.toContain(secret);
  });

  test("the JWT secret file is private when generated", async () => {
    const dir = tempDir("secret");
    const r = await startRouter("router-2", {
      LLM_ROUTER_DATA_DIR: dir,
      LLM_NODE_MODELS_DIR: tempDir("empty"),
      SERVICES: "router",
    });
    try {
      expect(fs.statSync(path.join(dir, "jwt-secret")).mode & 0o777).toBe(0o600);
      expect(fs.statSync(dir).mode & 0o077).toBe(0);
    } finally {
      await r.proc.stop();
    }
  });

  test("CORS is off unless origins are listed", async () => {
    const r = await routerClient(router.url).request("OPTIONS", "/v1/models", undefined, {
      headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
    });
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("first start and the CLI", () => {
  test("without a password, a strong one is generated, printed once, and works", async () => {
    const dir = tempDir("first");
    const env = {
      LLM_ROUTER_DATA_DIR: dir,
      LLM_ROUTER_ADMIN_PASSWORD: "",
      LLM_NODE_MODELS_DIR: tempDir("empty"),
      SERVICES: "router",
    };
    const r = await startRouter("first", env);
    const pw = (await r.proc.waitForOutput(/Password: (\S+)/))[1];
    expect(pw.length).toBeGreaterThanOrEqual(20);
    expect(await login(r.url, "admin", pw)).toEqual(expect.any(String));
    await r.proc.stop();
    const again = await startRouter("again", env);
    await again.proc.stop();
    expect(again.proc.output).not.toContain("Password:");
  });

  test("user and key commands work on the data store", async () => {
    const dir = tempDir("cli");
    const run = async (...args: string[]) => {
      const p = startCli("cli", { LLM_ROUTER_DATA_DIR: dir }, args);
      expect(await p.exited).toBe(0);
      return p.output;
    };
    expect(await run("user", "add", "ops", "--role", "admin", "--password", "ops-password")).toMatch(
      /created admin 'ops'/,
    );
    expect(await run("user", "list")).toMatch(/\tops\tadmin/);
    expect(await run("user", "limits", "ops", "--tpm", "5000", "--daily-budget", "100000")).toMatch(
      /rate_limit_tpm=5000 daily_token_budget=100000/,
    );
    expect(await run("user", "limits", "ops")).toMatch(/rate_limit_tpm=5000/);
    const created = await run(
      "key",
      "create",
      "--name",
      "recovery",
      "--owner",
      "ops",
      "--tpm",
      "100",
      "--scopes",
      "inference,read",
      "--priority",
      "batch",
    );
    const k = created.match(/sk-\S+/)![0];
    const listed = await run("key", "list");
    expect(listed).toMatch(/recovery/);
    expect(listed).not.toContain(k);
    const id = listed.split("\t")[0].trim().split("\n").pop()!;
    // a bad limit is refused, naming it
    const bad = startCli("cli", { LLM_ROUTER_DATA_DIR: dir }, ["key", "create", "--name", "x", "--tpm=-3"]);
    expect(await bad.exited).not.toBe(0);
    expect(bad.output).toMatch(/rate_limit_tpm/);

    // the router on that store has the key as the CLI made it, and every change in its audit log
    const r = await startRouter("cli-router", { LLM_ROUTER_DATA_DIR: dir, SERVICES: "router" });
    try {
      const admin = routerClient(r.url, { token: await login(r.url) });
      const key = (await admin.json("GET", "/api/api-keys")).body.find((x: { id: string }) => x.id === id);
      expect(key).toMatchObject({ rate_limit_tpm: 100, scopes: ["inference", "read"], priority: "batch" });
      const audit = (await admin.json("GET", "/api/audit")).body;
      const entries = (audit.entries ?? audit.data ?? audit) as Array<Record<string, unknown>>;
      const actions = entries.map((e) => e.action);
      expect(actions).toEqual(expect.arrayContaining(["CLI user add", "CLI user limits", "CLI key create"]));
      const add = entries.find((e) => e.action === "CLI user add")!;
      expect(add.actor).toMatch(/^cli:/);
      expect(JSON.stringify(add.changes)).not.toContain("ops-password");
      expect(entries.find((e) => e.action === "CLI key create" && e.status !== 200)).toBeDefined();
      expect((await admin.json("GET", "/api/audit/verify")).body).toMatchObject({ ok: true });
    } finally {
      await r.proc.stop();
    }
    expect(await run("key", "revoke", id)).toMatch(/revoked/);
    expect(await run("user", "delete", "ops")).toMatch(/deleted 'ops'/);
  });
});

describe("LLM_ROUTER_AUTH_DISABLED and CORS", () => {
  test("opens inference to trusted networks, loudly, and keeps management locked; CORS for listed origins", async () => {
    const models = tempDir("open-models");
    writeModel(models, MODEL);
    const open = await startRouter("open", {
      LLM_ROUTER_AUTH_DISABLED: "true",
      LLM_NODE_MODELS_DIR: models,
      LLM_ROUTER_CORS_ORIGINS: "https://app.example",
    });
    try {
      expect(open.proc.output).toMatch(/LLM_ROUTER_AUTH_DISABLED=true.*WITHOUT an API key/);
      const anon = routerClient(open.url);
      expect((await anon.get("/v1/models")).status).toBe(200);
      expect((await anon.get("/api/nodes")).status).toBe(401);
      expect((await anon.get("/api/users")).status).toBe(401);
      // and CORS answers the listed origin only
      const preflight = (origin: string) =>
        anon.request("OPTIONS", "/v1/models", undefined, {
          headers: { origin, "access-control-request-method": "GET" },
        });
      expect((await preflight("https://app.example")).headers.get("access-control-allow-origin")).toBe(
        "https://app.example",
      );
      expect((await preflight("https://evil.example")).headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await open.proc.stop();
    }
  });
});
