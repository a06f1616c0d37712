/**
 * Limits counted across routers: two `SERVICES=router` processes as peers on
 * one PostgreSQL database and one NATS server, an inference node (the
 * simulated engine: 8 prompt tokens, `max_tokens` out) beside them. A key's
 * tokens per minute spent on one router are spent on the other; the 429 has
 * Retry-After and the `x-ratelimit-*` headers, and the official `openai`
 * client, retrying on its own, waits what Retry-After says and gets through.
 */
import fs from "node:fs";
import OpenAI from "openai";
import { routerClient, type RouterClient } from "../helpers/client";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres";
import { login, startCli, startNats, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "counted";
let pg: TestDatabase;
let nats: { proc: Proc; url: string };
const procs: Proc[] = [];
let urls: string[];
let admin: RouterClient;

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
  pg = await createTestDatabase("llmr_quota");
  nats = await startNats();
  const models = tempDir("quota-peers-models");
  fs.writeFileSync(`${models}/${MODEL}.gguf`, "simulated");
  const [a, b] = await Promise.all([router("quota-a"), router("quota-b")]);
  procs.push(
    startCli("quota-node", {
      TRANSPORTER: nats.url,
      SERVICES: "inference",
      NODEID: "quota-node",
      LLM_NODE_MODELS_DIR: models,
      LLM_NODE_ENGINE: "instant",
      LLM_NODE_PARALLEL: "4",
    }),
  );
  urls = [a.url, b.url];
  admin = routerClient(a.url, { token: await login(a.url) });
  const probe = (await admin.json("POST", "/api/api-keys", { name: "probe" })).body.key;
  for (const url of urls) {
    await waitFor(async () => (await routerClient(url, { key: probe }).models()).some((m) => m.id === MODEL), {
      timeoutMs: 60_000,
      what: `${url} to see the node`,
    });
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await nats?.proc.stop();
  await pg?.drop();
});

test("tokens per minute spent on one router are spent on the other; the openai client waits out Retry-After", async () => {
  // 6,000 tokens a minute: 100 come back each second
  const made = await admin.json("POST", "/api/api-keys", { name: "tpm", rate_limit_tpm: 6000 });
  const key = made.body.key as string;
  const [a, b] = urls.map((url) => routerClient(url, { key }));
  const ask = (c: RouterClient, max_tokens: number) =>
    c.answer("POST", "/v1/chat/completions", { model: MODEL, max_tokens, messages: [{ role: "user", content: "x" }] });

  const first = await ask(a, 3000);
  expect(first.status).toBe(200);
  expect(first.headers.get("x-ratelimit-limit-tokens")).toBe("6000");
  expect(first.headers.get("x-ratelimit-remaining-tokens")).toBe("6000");
  // router b sees what a spent
  await waitFor(
    async () => Number((await b.answer("GET", "/v1/models")).headers.get("x-ratelimit-remaining-tokens")) < 3100,
    {
      what: "b to see a's tokens",
    },
  );
  expect((await ask(b, 3500)).status).toBe(200);

  // 6,516 tokens spent: over the limit on both routers until about 5 s of tokens are back
  const refused = await waitFor(
    async () => {
      const r = await ask(a, 1);
      return r.status === 429 ? r : null;
    },
    { what: "a to refuse" },
  );
  expect(refused.body.error).toMatchObject({ code: "rate_limit_exceeded", type: "rate_limit_error" });
  expect(refused.body.error.message).toMatch(/6000 tokens per minute/);
  expect(refused.headers.get("x-ratelimit-remaining-tokens")).toBe("0");
  expect(refused.headers.get("x-ratelimit-reset-tokens")).toMatch(/^\d+m?\d*s$/);
  const retryAfter = Number(refused.headers.get("retry-after"));
  const retryAfterMs = Number(refused.headers.get("retry-after-ms"));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(7);
  expect(Math.ceil(retryAfterMs / 1000)).toBe(retryAfter);
  expect((await ask(b, 1)).status).toBe(429);

  // the official client on router b: a 429, then its own retry after the wait it was told, then the answer
  const statuses: number[] = [];
  const client = new OpenAI({
    apiKey: key,
    baseURL: `${urls[1]}/v1`,
    maxRetries: 3,
    fetch: async (input: string | URL | Request, init?: RequestInit) => {
      const res = await fetch(input, init);
      statuses.push(res.status);
      return res;
    },
  });
  const t0 = Date.now();
  const answer = await client.chat.completions.create({
    model: MODEL,
    max_tokens: 1,
    messages: [{ role: "user", content: "x" }],
  });
  const waited = Date.now() - t0;
  expect(answer.choices[0].message.content).toBe("x");
  expect(statuses[0]).toBe(429);
  expect(statuses[statuses.length - 1]).toBe(200);
  // it waited what it was told (less what passed since the probe above), not its own short backoff
  expect(waited).toBeGreaterThan(Math.max(0, retryAfterMs - 1500));
}, 60_000);

test("an exhausted budget on one router is exhausted on the other, and the openai client does not retry it", async () => {
  const made = await admin.json("POST", "/api/api-keys", { name: "budget", monthly_token_budget: 50 });
  const key = made.body.key as string;
  const [a, b] = urls.map((url) => routerClient(url, { key }));
  expect(
    (
      await a.answer("POST", "/v1/chat/completions", {
        model: MODEL,
        max_tokens: 60,
        messages: [{ role: "user", content: "x" }],
      })
    ).status,
  ).toBe(200);
  await waitFor(
    async () => (await b.answer("GET", "/v1/models")).headers.get("x-ratelimit-remaining-tokens-month") === "0",
  );
  const statuses: number[] = [];
  const client = new OpenAI({
    apiKey: key,
    baseURL: `${urls[1]}/v1`,
    fetch: async (input: string | URL | Request, init?: RequestInit) => {
      const res = await fetch(input, init);
      statuses.push(res.status);
      return res;
    },
  });
  const err = await client.chat.completions
    .create({ model: MODEL, max_tokens: 1, messages: [{ role: "user", content: "x" }] })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.RateLimitError);
  expect((err as InstanceType<typeof OpenAI.RateLimitError>).code).toBe("insufficient_quota");
  expect(statuses).toEqual([429]);
});
