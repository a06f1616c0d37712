/**
 * The router on PostgreSQL (LLM_ROUTER_DATABASE_URL), the machine's real
 * server in a database of this file's own: routers starting together migrate
 * it once and make one admin; what a router keeps (accounts, keys, login
 * tokens' secret, node settings, stored responses, history) outlives it,
 * with no data dir to carry it.
 */
import { Client } from "pg";
import { MIGRATIONS } from "../../lib/db/migrations";
import { routerClient } from "../helpers/client";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres";
import { createKey, login, startCli, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-pg";
let pg: TestDatabase;
let models: string;
const procs: Proc[] = [];

async function rows(sql: string): Promise<Array<Record<string, unknown>>> {
  const c = new Client({ connectionString: pg.url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

/** A router on the test database; each start gets a new, empty data dir. */
async function router(name: string, extra: Record<string, string> = {}) {
  const r = await startRouter(name, { LLM_ROUTER_DATABASE_URL: pg.url, LLM_NODE_MODELS_DIR: models, ...extra });
  procs.push(r.proc);
  return r;
}

beforeAll(async () => {
  pg = await createTestDatabase("llmr_it");
  models = tempDir("pg-models");
  writeModel(models, MODEL);
}, 30_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await pg?.drop();
});

test("two routers starting together on a new database: migrated once, one admin", async () => {
  const both = await Promise.all([router("pg-a", { SERVICES: "router" }), router("pg-b", { SERVICES: "router" })]);
  expect(await rows("SELECT name FROM schema_migrations ORDER BY name")).toEqual(
    MIGRATIONS.map((m) => ({ name: m.name })),
  );
  expect(await rows("SELECT doc->>'username' AS username, doc->>'role' AS role FROM users")).toEqual([
    { username: "admin", role: "admin" },
  ]);
  // either one lets the admin in, with the same secret behind the tokens
  const token = await login(both[0].url);
  expect((await routerClient(both[1].url, { token }).answer("GET", "/api/auth/me")).status).toBe(200);
  await Promise.all(both.map((r) => r.proc.stop()));
}, 60_000);

test("what a router keeps outlives it: logins, keys, node settings, stored responses, history", async () => {
  let r = await router("pg-1", { NODEID: "pg-box" });
  await r.proc.waitForOutput(/is online/);
  const token = await login(r.url);
  const key = await createKey(r.url, { name: "kept" });
  const user = routerClient(r.url, { key });
  const chat = await user.json("POST", "/v1/chat/completions", {
    model: MODEL,
    messages: [{ role: "user", content: "postgres-marker" }],
    max_tokens: 3,
  });
  expect(chat.status).toBe(200);
  const stored = await user.json("POST", "/v1/responses", { model: MODEL, input: "keep me", max_output_tokens: 3 });
  const nodeId = chat.headers.get("x-router-node")!;
  const admin = routerClient(r.url, { token });
  expect((await admin.answer("PUT", `/api/nodes/${nodeId}/settings`, { name: "renamed", tags: ["pg"] })).status).toBe(
    200,
  );
  await waitFor(
    async () => (await admin.json("GET", "/api/dashboard/request-responses?q=postgres-marker")).body.total_count === 1,
    {
      what: "the chat in history",
    },
  );
  await r.proc.stop();

  r = await router("pg-2", { NODEID: "pg-box" });
  await r.proc.waitForOutput(/is online/);
  const again = routerClient(r.url, { token });
  expect((await again.answer("GET", "/api/auth/me")).body).toMatchObject({ username: "admin" });
  const keys = (await again.json("GET", "/api/api-keys")).body as Array<{ name: string }>;
  expect(keys.map((k) => k.name)).toEqual(["kept"]);
  const userAgain = routerClient(r.url, { key });
  expect((await userAgain.json("GET", `/v1/responses/${stored.body.id}`)).body).toEqual(stored.body);
  const node = (await again.json("GET", `/api/nodes/${nodeId}`)).body;
  expect(node).toMatchObject({ display_name: "renamed", tags: ["pg"] });
  const history = (await again.json("GET", "/api/dashboard/request-responses?q=postgres-marker")).body;
  expect(history.total_count).toBe(1);
  expect(history.records[0]).toMatchObject({ model: MODEL, status: 200, api_key_name: "kept" });
  expect(r.proc.output).not.toMatch(/ERROR/);
}, 90_000);

test("the CLI works on the database while a router runs: a key it makes works at once", async () => {
  const r = await router("pg-cli", { SERVICES: "router" });
  const run = async (...args: string[]) => {
    const p = startCli("cli", { LLM_ROUTER_DATABASE_URL: pg.url }, args);
    expect(await p.exited).toBe(0);
    return p.output;
  };
  const key = (await run("key", "create", "--name", "from-cli", "--owner", "admin")).match(/sk-\S+/)![0];
  expect((await routerClient(r.url, { key }).answer("GET", "/v1/models")).status).toBe(200);
  expect(await run("user", "list")).toMatch(/\tadmin\tadmin/);
  await r.proc.stop();
}, 60_000);
