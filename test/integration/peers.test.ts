/**
 * Routers as peers on one PostgreSQL database: two `SERVICES=router`
 * processes on one NATS server, neither special. A key made on one works on
 * the other; a key's requests per minute and failed logins are counted
 * across both; a logout on one ends the token on both, and on a router that
 * starts after it. (The machine's real PostgreSQL, a database of this
 * file's own.)
 */
import { routerClient, type RouterClient } from "../helpers/client";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres";
import { ADMIN_PASSWORD, login, startNats, startRouter, type Proc } from "../helpers/procs";
import { OPENAI_TEST_KEY, startOpenAIStandIn } from "../helpers/standins/openai";
import { waitFor } from "../helpers/wait";

let pg: TestDatabase;
let nats: { proc: Proc; url: string };
const procs: Proc[] = [];
let urls: string[];
let admin: RouterClient[];

async function router(name: string) {
  const r = await startRouter(name, {
    TRANSPORTER: nats.url,
    SERVICES: "router",
    NODEID: name,
    LLM_ROUTER_DATABASE_URL: pg.url,
  });
  procs.push(r.proc);
  return r;
}

beforeAll(async () => {
  pg = await createTestDatabase("llmr_peers");
  nats = await startNats();
  const [a, b] = await Promise.all([router("peer-a"), router("peer-b")]);
  urls = [a.url, b.url];
  for (const url of urls) {
    await waitFor(async () => (await routerClient(url).json("GET", "/health")).body.routers === 2, {
      what: "the routers to see each other",
    });
  }
  const token = await login(a.url);
  admin = urls.map((url) => routerClient(url, { token }));
}, 60_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await nats?.proc.stop();
  await pg?.drop();
});

test("a key made on one router works on the other; revoked on the other, it stops on both", async () => {
  const made = await admin[0].json("POST", "/api/api-keys", { name: "shared" });
  expect(made.status).toBe(201);
  const key = made.body.key as string;
  for (const url of urls) expect((await routerClient(url, { key }).answer("GET", "/v1/models")).status).toBe(200);
  expect((await admin[1].answer("DELETE", `/api/api-keys/${made.body.id}`)).status).toBe(200);
  for (const url of urls) expect((await routerClient(url, { key }).answer("GET", "/v1/models")).status).toBe(401);
});

test("a key's requests per minute are counted across both routers", async () => {
  // the limit counts per clock minute: start well inside one
  await waitFor(() => Date.now() % 60_000 < 45_000, { timeoutMs: 20_000, what: "a fresh minute" });
  const key = (await admin[0].json("POST", "/api/api-keys", { name: "limited", rate_limit_rpm: 3 })).body.key;
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    statuses.push((await routerClient(urls[i % 2], { key }).answer("GET", "/v1/models")).status);
  }
  expect(statuses).toEqual([200, 200, 200, 429, 429]);
});

test("failed logins are counted across both routers", async () => {
  expect((await admin[0].answer("POST", "/api/users", { username: "victim", password: "right-password" })).status).toBe(
    201,
  );
  for (let i = 0; i < 10; i++) {
    const r = await routerClient(urls[i % 2]).answer("POST", "/api/auth/login", {
      username: "victim",
      password: "nope",
    });
    expect(r.status).toBe(401);
  }
  for (const url of urls) {
    const r = await routerClient(url).answer("POST", "/api/auth/login", {
      username: "victim",
      password: "right-password",
    });
    expect(r.status).toBe(429);
  }
});

test("a runtime registered on one router, its settings and a drain are served and shown by the other at once", async () => {
  const standIn = await startOpenAIStandIn();
  try {
    const reg = await admin[0].json("POST", "/api/nodes", {
      base_url: `${standIn.url}/v1`,
      api_key: OPENAI_TEST_KEY,
      name: "shared-runtime",
    });
    expect(reg.status).toBe(201);
    const id = reg.body.id as string;
    // the other router read it from the database before the registration was answered
    expect((await admin[1].answer("GET", `/api/nodes/${id}`)).status).toBe(200);
    expect((await admin[1].answer("PUT", `/api/nodes/${id}/settings`, { tags: ["peers"] })).status).toBe(200);
    for (const a of admin) expect((await a.json("GET", `/api/nodes/${id}`)).body.tags).toEqual(["peers"]);
    // a drain set on one holds on both once it is answered; so does its end
    expect((await admin[0].answer("POST", `/api/nodes/${id}/drain`)).status).toBe(200);
    for (const a of admin) expect((await a.json("GET", `/api/nodes/${id}`)).body.draining).toBe(true);
    expect((await admin[1].answer("POST", `/api/nodes/${id}/undrain`)).status).toBe(200);
    for (const a of admin) expect((await a.json("GET", `/api/nodes/${id}`)).body.draining).toBe(false);
    const key = (await admin[1].json("POST", "/api/api-keys", { name: "runtime-user" })).body.key;
    for (const url of urls) {
      await waitFor(
        async () =>
          (
            await routerClient(url, { key }).answer("POST", "/v1/chat/completions", {
              model: "gpt-4o-mini",
              messages: [{ role: "user", content: "hi" }],
            })
          ).status === 200,
        { what: `the runtime's model served by ${url}` },
      );
    }
  } finally {
    await standIn.close();
  }
});

test("a logout on one router ends the token on the other, and on a router started later", async () => {
  const token = await login(urls[1], "admin", ADMIN_PASSWORD);
  expect((await routerClient(urls[0], { token }).answer("GET", "/api/auth/me")).status).toBe(200);
  expect((await routerClient(urls[1], { token }).answer("POST", "/api/auth/logout")).status).toBe(200);
  await waitFor(async () => (await routerClient(urls[0], { token }).answer("GET", "/api/auth/me")).status === 401, {
    what: "the other router to refuse the token",
  });
  const later = await router("peer-c");
  await waitFor(async () => (await routerClient(later.url).json("GET", "/health")).body.routers === 3, {
    what: "the new router to join",
  });
  expect((await routerClient(later.url, { token }).answer("GET", "/api/auth/me")).status).toBe(401);
  // the admin's other logins still work there
  expect((await routerClient(later.url, { token: await login(later.url) }).answer("GET", "/api/auth/me")).status).toBe(
    200,
  );
}, 30_000);
