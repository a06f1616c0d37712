/**
 * Limits per key and per user on a real router (all-in-one, embedded
 * store; the simulated engine at a known pace: 8 prompt tokens, one chunk
 * per completion token). A daily budget that runs out mid-stream lets the
 * stream finish and refuses the next request, while the stream still runs;
 * requests at once; a user's limits hold for all their keys; every answer
 * carries `x-ratelimit-*`; bad limits are a 400 naming the field; scopes;
 * a login makes keys for its own use only; a key's new priority reaches its
 * requests already waiting.
 */
import fs from "node:fs";
import { routerClient, sse, type RouterClient } from "../helpers/client";
import { createKey, login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "paced";
let router: { proc: Proc; url: string };
let admin: RouterClient;
const dataDir = tempDir("quota-data");
const models = tempDir("quota-models");
const routerEnv = {
  LLM_ROUTER_DATA_DIR: dataDir,
  LLM_NODE_MODELS_DIR: models,
  LLM_NODE_ENGINE: "instant",
  LLM_NODE_INSTANT_MS_PER_TOKEN: "10",
  LLM_NODE_PARALLEL: "4",
  LLM_ROUTER_QUEUE_TIMEOUT_SECS: "60",
};

const body = (max_tokens: number, stream = false) => ({
  model: MODEL,
  max_tokens,
  stream,
  messages: [{ role: "user", content: "x" }],
});

async function keyWith(fields: Record<string, unknown>): Promise<{ id: string; key: string; client: RouterClient }> {
  const made = await admin.json("POST", "/api/api-keys", { name: "quota", ...fields });
  expect(made.status).toBe(201);
  return { id: made.body.id, key: made.body.key, client: routerClient(router.url, { key: made.body.key }) };
}

beforeAll(async () => {
  fs.writeFileSync(`${models}/${MODEL}.gguf`, "simulated");
  router = await startRouter("router", routerEnv);
  await router.proc.waitForOutput(/is online/);
  admin = routerClient(router.url, { token: await login(router.url) });
  const key = routerClient(router.url, { key: await createKey(router.url) });
  await waitFor(async () => (await key.models()).some((m) => m.id === MODEL));
}, 60_000);

afterAll(async () => {
  await router?.proc.stop();
});

test("a daily budget that runs out mid-stream: the stream finishes, requests during and after it are refused", async () => {
  const { client } = await keyWith({ daily_token_budget: 100 });
  // 400 tokens at 10 ms each: the budget is gone after a second, the stream runs four
  const streaming = client.chat(body(400, true));
  const started = await streaming;
  expect(started.status).toBe(200);
  expect(started.headers.get("x-ratelimit-limit-tokens-day")).toBe("100");
  expect(started.headers.get("x-ratelimit-remaining-tokens-day")).toBe("100");
  const text = started.text();
  let streamDone = false;
  void text.then(() => (streamDone = true));

  // counted as the tokens flow: a request while the stream still runs is refused
  const refused = await waitFor(
    async () => {
      const r = await client.answer("POST", "/v1/chat/completions", body(1));
      return r.status === 429 ? r : null;
    },
    { timeoutMs: 10_000, intervalMs: 100, what: "the budget to run out" },
  );
  expect(streamDone).toBe(false);
  expect(refused.body.error).toMatchObject({ code: "insufficient_quota", type: "insufficient_quota" });
  expect(refused.body.error.message).toMatch(/daily budget of 100 tokens/);
  expect(refused.headers.get("x-ratelimit-remaining-tokens-day")).toBe("0");
  const retryAfter = Number(refused.headers.get("retry-after"));
  const untilMidnight =
    (Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1) - Date.now()) / 1000;
  expect(Math.abs(retryAfter - untilMidnight)).toBeLessThan(30);

  // the stream itself was let finish: every token, its end, [DONE]
  const { chunks, done } = sse(await text);
  expect(done).toBe(true);
  expect(chunks.filter((c) => c.choices?.[0]?.delta?.content).length).toBe(400);
  expect(chunks.find((c) => c.choices?.[0]?.finish_reason)?.choices[0].finish_reason).toBe("length");

  // and after it, still refused
  const after = await client.answer("POST", "/v1/chat/completions", body(1));
  expect(after.status).toBe(429);
  expect(after.body.error.code).toBe("insufficient_quota");
}, 60_000);

test("requests at once: past the limit a 429 with Retry-After; a finished request frees its slot", async () => {
  const { client } = await keyWith({ max_concurrent_requests: 2 });
  const slow = [
    client.answer("POST", "/v1/chat/completions", body(200)),
    client.answer("POST", "/v1/chat/completions", body(200)),
  ];
  await waitFor(async () => (await admin.nodes())[0]?.active_requests === 2, { what: "both running" });
  const third = await client.answer("POST", "/v1/chat/completions", body(1));
  expect(third.status).toBe(429);
  expect(third.body.error).toMatchObject({ code: "rate_limit_exceeded", type: "rate_limit_error" });
  expect(third.body.error.message).toMatch(/2 requests at once/);
  expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
  for (const r of await Promise.all(slow)) {
    expect(r.status).toBe(200);
    expect(r.headers.get("x-ratelimit-limit-concurrent-requests")).toBe("2");
  }
  expect((await client.answer("POST", "/v1/chat/completions", body(1))).status).toBe(200);
}, 60_000);

test("a user's limits hold for all their keys together; the user's list shows them", async () => {
  const made = await admin.json("POST", "/api/users", {
    username: "team-a",
    password: "team-a-password",
    role: "viewer",
  });
  expect(made.status).toBe(201);
  const user = made.body.id as string;
  const set = await admin.json("PUT", `/api/users/${user}`, { rate_limit_rpm: 3 });
  expect(set.status).toBe(200);
  expect(set.body).toMatchObject({ id: user, username: "team-a", rate_limit_rpm: 3, rate_limit_tpm: null });
  const listed = (await admin.json("GET", "/api/users")).body.find((u: { id: string }) => u.id === user);
  expect(listed).toMatchObject({ rate_limit_rpm: 3, daily_token_budget: null });

  // the limit counts per clock minute: start well inside one
  await waitFor(() => Date.now() % 60_000 < 40_000, { timeoutMs: 25_000, what: "a fresh minute" });
  const a = await keyWith({ owner: user, name: "a" });
  const b = await keyWith({ owner: user, name: "b" });
  const statuses: number[] = [];
  let last;
  for (const k of [a, b, a, b]) {
    last = await k.client.answer("POST", "/v1/chat/completions", body(1));
    statuses.push(last.status);
  }
  expect(statuses).toEqual([200, 200, 200, 429]);
  expect(last!.body.error.message).toMatch(/This key's user is limited to 3 requests per minute/);
  expect(last!.headers.get("x-ratelimit-remaining-requests")).toBe("0");

  // cleared: the keys go on
  expect((await admin.json("PUT", `/api/users/${user}`, { rate_limit_rpm: null })).body.rate_limit_rpm).toBeNull();
  expect((await a.client.answer("POST", "/v1/chat/completions", body(1))).status).toBe(200);
}, 60_000);

test("every answer of a limited key says where it stands: requests, tokens, day, month", async () => {
  const { client } = await keyWith({
    rate_limit_rpm: 1000,
    // 10 tokens a second come back: the first request's 24 are still missing when the next one starts
    rate_limit_tpm: 600,
    daily_token_budget: 1_000_000,
    monthly_token_budget: 10_000_000,
  });
  const first = await client.answer("POST", "/v1/chat/completions", body(16));
  expect(first.status).toBe(200);
  expect(first.headers.get("x-ratelimit-limit-requests")).toBe("1000");
  expect(first.headers.get("x-ratelimit-remaining-requests")).toBe("999");
  expect(first.headers.get("x-ratelimit-reset-requests")).toMatch(/^(1m0s|\d+(ms|s))$/);
  expect(first.headers.get("x-ratelimit-limit-tokens")).toBe("600");
  expect(first.headers.get("x-ratelimit-remaining-tokens")).toBe("600");
  expect(first.headers.get("x-ratelimit-limit-tokens-month")).toBe("10000000");
  // the first request's 24 tokens (8 in, 16 out) are counted by the time the next one starts
  await waitFor(async () => {
    const r = await client.answer("GET", "/v1/models");
    return r.headers.get("x-ratelimit-remaining-tokens-day") === String(1_000_000 - 24);
  });
  const next = await client.answer("POST", "/v1/chat/completions", body(1));
  expect(Number(next.headers.get("x-ratelimit-remaining-tokens"))).toBeLessThan(600);
  expect(next.headers.get("x-ratelimit-remaining-tokens-month")).toBe(String(10_000_000 - 24));
  // a key without limits: nothing to pace by
  const free = routerClient(router.url, { key: await createKey(router.url) });
  expect(
    (await free.answer("POST", "/v1/chat/completions", body(1))).headers.get("x-ratelimit-limit-requests"),
  ).toBeNull();
});

test("bad limits, scopes and priorities are refused with a 400 naming the field; nothing changes", async () => {
  const { id } = await keyWith({ rate_limit_tpm: 500 });
  for (const [field, value] of [
    ["rate_limit_tpm", -5],
    ["rate_limit_tpm", 0],
    ["rate_limit_rpm", 1.5],
    ["daily_token_budget", 1e20],
    ["monthly_token_budget", "lots"],
    ["max_concurrent_requests", true],
    ["priority", "urgent"],
    ["scopes", ["everything"]],
    ["scopes", ["POST /api/users"]],
    ["scopes", []],
  ] as const) {
    for (const [method, path] of [
      ["POST", "/api/api-keys"],
      ["PUT", `/api/api-keys/${id}`],
    ]) {
      const r = await admin.answer(method, path, { name: "bad", [field]: value });
      expect({ field, method, status: r.status, param: r.body?.error?.param }).toEqual({
        field,
        method,
        status: 400,
        param: field,
      });
    }
  }
  const user = (await admin.json("GET", "/api/users")).body[0].id;
  const r = await admin.answer("PUT", `/api/users/${user}`, { rate_limit_tpm: -1 });
  expect({ status: r.status, param: r.body.error.param }).toEqual({ status: 400, param: "rate_limit_tpm" });
  const keys = (await admin.json("GET", "/api/api-keys")).body;
  expect(keys.find((k: { id: string }) => k.id === id)).toMatchObject({ rate_limit_tpm: 500, name: "quota" });
});

test("scopes: inference only, read-only management, named routes", async () => {
  const inference = await keyWith({});
  const reader = await keyWith({ scopes: ["read"] });
  const embedOnly = await keyWith({ scopes: ["POST /v1/embeddings", "/v1/models"] });

  expect((await inference.client.answer("POST", "/v1/chat/completions", body(1))).status).toBe(200);
  expect((await inference.client.answer("GET", "/api/nodes")).status).toBe(401);

  const denied = await reader.client.answer("POST", "/v1/chat/completions", body(1));
  expect(denied.status).toBe(403);
  expect(denied.body.error.code).toBe("scope_not_allowed");
  const nodes = await reader.client.answer("GET", "/api/nodes");
  expect(nodes.status).toBe(200);
  expect(nodes.body[0].id).toBeDefined();
  expect((await reader.client.answer("GET", "/api/usage?group_by=day")).status).toBe(200);
  // read-only: never a change, never an admin route
  expect((await reader.client.answer("POST", "/api/api-keys", { name: "more" })).status).toBe(401);
  expect((await reader.client.answer("GET", "/api/users")).status).toBe(401);
  expect((await reader.client.answer("GET", "/api/audit")).status).toBe(401);

  expect((await embedOnly.client.answer("GET", "/v1/models")).status).toBe(200);
  expect((await embedOnly.client.answer("POST", "/v1/chat/completions", body(1))).status).toBe(403);
  const listed = (await admin.json("GET", "/api/api-keys")).body.find((k: { id: string }) => k.id === embedOnly.id);
  expect(listed.scopes).toEqual(["POST /v1/embeddings", "/v1/models"]);
});

test("a login makes and revokes keys for its own use only, and the audit log has it", async () => {
  const made = await admin.json("POST", "/api/users", {
    username: "self-serve",
    password: "self-serve-password",
    role: "viewer",
  });
  const viewerId = made.body.id as string;
  const viewer = routerClient(router.url, { token: await login(router.url, "self-serve", "self-serve-password") });
  const own = await viewer.json("POST", "/api/api-keys", { name: "mine", rate_limit_rpm: 100 });
  expect(own.status).toBe(201);
  expect(own.body.owner).toBe(viewerId);
  expect(
    (await routerClient(router.url, { key: own.body.key }).answer("POST", "/v1/chat/completions", body(1))).status,
  ).toBe(200);

  const adminId = (await admin.json("GET", "/api/auth/me")).body.id;
  const forOther = await viewer.answer("POST", "/api/api-keys", { name: "theirs", owner: adminId });
  expect({ status: forOther.status, param: forOther.body.error.param }).toEqual({ status: 403, param: "owner" });
  const urgent = await viewer.answer("POST", "/api/api-keys", { name: "urgent", priority: "interactive" });
  expect({ status: urgent.status, param: urgent.body.error.param }).toEqual({ status: 403, param: "priority" });
  expect((await viewer.answer("PUT", `/api/api-keys/${own.body.id}`, { name: "x" })).status).toBe(403);

  // another's key is no business of theirs; their own they revoke
  const adminsKey = (await admin.json("POST", "/api/api-keys", { name: "admins" })).body.id;
  expect((await viewer.answer("DELETE", `/api/api-keys/${adminsKey}`)).status).toBe(404);
  expect((await viewer.answer("DELETE", `/api/api-keys/${own.body.id}`)).status).toBe(200);
  expect((await routerClient(router.url, { key: own.body.key }).answer("GET", "/v1/models")).status).toBe(401);

  // both changes are in the audit log, under the viewer's name
  const audit = (await admin.json("GET", "/api/audit?per_page=20")).body;
  const entries = (audit.data ?? audit.entries ?? audit) as Array<{
    actor?: string;
    username?: string;
    route?: string;
    action?: string;
  }>;
  const mine = entries.filter(
    (e) => JSON.stringify(e).includes("self-serve") && JSON.stringify(e).includes("api-keys"),
  );
  expect(mine.length).toBeGreaterThanOrEqual(2);
});

test("a key's new priority reaches its requests already waiting in the queue", async () => {
  const batch = await keyWith({ priority: "batch" });
  const other = await keyWith({ priority: "normal" });
  // four slots: fill them with long requests, then queue the batch key's and the other key's
  const fill = Array.from({ length: 4 }, () => other.client.answer("POST", "/v1/chat/completions", body(150)));
  await waitFor(async () => (await admin.nodes())[0]?.active_requests === 4, { what: "every slot taken" });
  const order: string[] = [];
  const queuedBatch = batch.client
    .answer("POST", "/v1/chat/completions", body(1))
    .then((r) => (order.push("batch"), r));
  await waitFor(async () => (await routerClient(router.url).json("GET", "/health")).body.queued_requests === 1);
  const queuedOther = other.client
    .answer("POST", "/v1/chat/completions", body(1))
    .then((r) => (order.push("normal"), r));
  await waitFor(async () => (await routerClient(router.url).json("GET", "/health")).body.queued_requests === 2);
  // the batch key is made interactive while both wait: it now goes first
  expect((await admin.json("PUT", `/api/api-keys/${batch.id}`, { priority: "interactive" })).body.priority).toBe(
    "interactive",
  );
  const [b, o] = await Promise.all([queuedBatch, queuedOther]);
  expect([b.status, o.status]).toEqual([200, 200]);
  expect(order[0]).toBe("batch");
  await Promise.all(fill);
}, 60_000);

test("a budget spent before a restart is still spent after it", async () => {
  const { key, client } = await keyWith({ monthly_token_budget: 30 });
  expect((await client.answer("POST", "/v1/chat/completions", body(40))).status).toBe(200);
  await waitFor(
    async () => (await client.answer("GET", "/v1/models")).headers.get("x-ratelimit-remaining-tokens-month") === "0",
    { what: "the budget spent" },
  );
  await router.proc.stop();
  router = await startRouter("router-again", routerEnv);
  const after = await routerClient(router.url, { key }).answer("POST", "/v1/chat/completions", body(1));
  expect(after.status).toBe(429);
  expect(after.body.error.code).toBe("insufficient_quota");
}, 60_000);
