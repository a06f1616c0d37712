/**
 * Router replicas: a `router` process (it holds accounts, keys, history and the
 * model catalog) and `gateway` replicas on the same NATS serve the same
 * cluster, as they would behind any HTTP load balancer: same nodes, keys,
 * logins, rate limits, node settings and history from either one.
 */
import fs from "node:fs";
import path from "node:path";
import { routerClient } from "../helpers/client";
import { login, startCli, startNats, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "replica-model";
let nats: { proc: Proc; url: string };
let a: { proc: Proc; url: string };
let b: { proc: Proc; url: string };
let node: Proc;
const models = tempDir("replica-models");
fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "instant engine: never loaded");

const cluster = () => ({
  TRANSPORTER: nats.url,
  HEARTBEAT_INTERVAL: "1",
  HEARTBEAT_TIMEOUT: "3",
  LLM_NODE_HEARTBEAT_SECS: "1",
});

/** A request to the replica at `url` with a login token or an API key: `{ status, body }`. */
const call = (url: string, method: string, p: string, auth?: string, body?: unknown) =>
  routerClient(url, { token: auth }).answer(method, p, body);

const chat = (url: string, key: string, content: string) =>
  call(url, "POST", "/v1/chat/completions", key, {
    model: MODEL,
    messages: [{ role: "user", content }],
    max_tokens: 3,
  });

async function servedOn(url: string, key: string): Promise<boolean> {
  const r = await call(url, "GET", "/v1/models", key);
  return r.status === 200 && r.body.data.some((m: { id: string }) => m.id === MODEL);
}

let adminA: string;
let key: string;

beforeAll(async () => {
  nats = await startNats();
  node = startCli("node", {
    ...cluster(),
    SERVICES: "inference",
    NODEID: "node-1",
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
  });
  a = await startRouter("router-a", { ...cluster(), SERVICES: "router", NODEID: "router-a" });
  b = await startRouter("router-b", { ...cluster(), SERVICES: "gateway", NODEID: "router-b" });
  adminA = await login(a.url);
  const created = await call(b.url, "POST", "/api/api-keys", await login(b.url), { name: "shared" });
  expect(created.status).toBe(201);
  key = created.body.key;
  await waitFor(async () => (await servedOn(a.url, key)) && (await servedOn(b.url, key)), {
    timeoutMs: 60_000,
    what: "the model served through both replicas",
  });
}, 90_000);

afterAll(async () => {
  await Promise.all([a?.proc.stop(), b?.proc.stop(), node?.stop()]);
  await nats?.proc.stop();
});

describe("two router replicas on one cluster", () => {
  test("both see the same node; a key made on one works on both; its rate limit counts across both", async () => {
    const [na, nb] = await Promise.all([
      call(a.url, "GET", "/api/nodes", adminA),
      call(b.url, "GET", "/api/nodes", adminA),
    ]);
    expect(na.body.map((n: { id: string }) => n.id)).toEqual(["node-1"]);
    expect(nb.body.map((n: { id: string }) => n.id)).toEqual(["node-1"]);
    expect((await chat(a.url, key, "made on b, used on a")).status).toBe(200);
    // 4 per minute: two on each replica, then the fifth is refused wherever it goes
    const limited = (await call(b.url, "POST", "/api/api-keys", adminA, { name: "limited", rate_limit_rpm: 4 })).body
      .key;
    for (const url of [a.url, b.url, a.url, b.url]) expect((await chat(url, limited, "counted")).status).toBe(200);
    const over = await chat(a.url, limited, "one too many");
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe("rate_limit_exceeded");
  });

  test("a login from one replica works on the other, and logging out on one ends it on both", async () => {
    const token = await login(a.url);
    expect((await call(b.url, "GET", "/api/auth/me", token)).status).toBe(200);
    expect((await call(b.url, "POST", "/api/auth/logout", token)).status).toBe(200);
    expect((await call(a.url, "GET", "/api/auth/me", token)).status).toBe(401);
  });

  test("node settings and draining set on one replica show on the other", async () => {
    const put = await call(b.url, "PUT", "/api/nodes/node-1/settings", adminA, { name: "renamed-on-b", tags: ["gpu"] });
    expect(put.status).toBe(200);
    await waitFor(
      async () => (await call(a.url, "GET", "/api/nodes/node-1", adminA)).body.display_name === "renamed-on-b",
      {
        what: "the new name on replica a",
      },
    );
    expect((await call(a.url, "POST", "/api/nodes/node-1/drain", adminA)).status).toBe(200);
    await waitFor(async () => (await call(b.url, "GET", "/api/nodes/node-1", adminA)).body.draining === true, {
      what: "draining on replica b",
    });
    expect((await call(b.url, "POST", "/api/nodes/node-1/undrain", adminA)).status).toBe(200);
    await waitFor(async () => (await call(a.url, "GET", "/api/nodes/node-1", adminA)).body.draining === false, {
      what: "undrained on replica a",
    });
  });

  test("requests through either replica are in one history", async () => {
    const fresh = (await call(a.url, "POST", "/api/api-keys", adminA, { name: "history" })).body.key as string;
    expect((await chat(a.url, fresh, "through replica a")).status).toBe(200);
    expect((await chat(b.url, fresh, "through replica b")).status).toBe(200);
    for (const url of [a.url, b.url]) {
      await waitFor(
        async () =>
          (await call(url, "GET", "/api/dashboard/request-responses?q=through%20replica", adminA)).body.total_count ===
          2,
        { what: "both requests in history" },
      );
    }
  });

  test("a revoked key stops working on both at once", async () => {
    const keys = (await call(a.url, "GET", "/api/api-keys", adminA)).body as Array<{ id: string; name: string }>;
    const id = keys.find((k) => k.name === "history")!.id;
    const fresh = await call(b.url, "POST", "/api/api-keys", adminA, { name: "to-revoke" });
    expect((await chat(b.url, fresh.body.key, "before")).status).toBe(200);
    expect((await call(a.url, "DELETE", `/api/api-keys/${fresh.body.id}`, adminA)).status).toBe(200);
    expect((await chat(b.url, fresh.body.key, "after")).status).toBe(401);
    expect(id).toBeTruthy();
  });

  test("a replica started later adopts the node settings set before it came", async () => {
    const c = await startRouter("router-c", { ...cluster(), SERVICES: "gateway", NODEID: "router-c" });
    try {
      await waitFor(
        async () => (await call(c.url, "GET", "/api/nodes/node-1", adminA)).body?.display_name === "renamed-on-b",
        {
          timeoutMs: 20_000,
          what: "replica c to show the name set on b",
        },
      );
    } finally {
      await c.proc.stop();
    }
  }, 60_000);
});
