/**
 * The wait queue's order on a real router: one node slot (the simulated
 * engine at 5 ms a token), keys of different priorities. `interactive`
 * requests go before queued `batch` ones; one key's 200 queued requests do
 * not hold back another key's one; history has each request's queue wait.
 */
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";
import fs from "node:fs";

const MODEL = "slot";
let router: { proc: Proc; url: string };
let admin: RouterClient;
const keys: Record<string, RouterClient> = {};

async function queued(): Promise<number> {
  return (await routerClient(router.url).json("GET", "/health")).body.queued_requests;
}

/** The node's only slot is taken (its heartbeat says one request is running). */
async function slotTaken(): Promise<void> {
  await waitFor(async () => (await admin.nodes())[0]?.active_requests === 1, { what: "the slot taken" });
}

const ask = (who: string, max_tokens = 4) =>
  keys[who].json("POST", "/v1/chat/completions", {
    model: MODEL,
    max_tokens,
    messages: [{ role: "user", content: "x" }],
  });

beforeAll(async () => {
  const models = tempDir("priority-models");
  fs.writeFileSync(`${models}/${MODEL}.gguf`, "simulated");
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_NODE_INSTANT_MS_PER_TOKEN: "5",
    LLM_NODE_PARALLEL: "1",
    LLM_ROUTER_QUEUE_LIMIT: "1000",
    LLM_ROUTER_QUEUE_TIMEOUT_SECS: "120",
  });
  await router.proc.waitForOutput(/is online/);
  admin = routerClient(router.url, { token: await login(router.url) });
  for (const [who, priority] of [
    ["batch", "batch"],
    ["interactive", "interactive"],
    ["busy", "normal"],
    ["other", "normal"],
  ] as const) {
    keys[who] = routerClient(router.url, { key: await createKey(router.url, { name: who, priority }) });
  }
  await waitFor(async () => (await keys.other.models()).some((m) => m.id === MODEL));
}, 60_000);

afterAll(async () => {
  await router?.proc.stop();
});

test("a key's priority is shown, changed, and refused when it is no priority", async () => {
  const list = (await admin.json("GET", "/api/api-keys")).body as Array<{
    id: string;
    name: string;
    priority: unknown;
  }>;
  expect(list.find((k) => k.name === "batch")?.priority).toBe("batch");
  const bad = await admin.answer("POST", "/api/api-keys", { name: "x", priority: "urgent" });
  expect(bad.status).toBe(400);
  expect(bad.body.error.param).toBe("priority");
  const id = list.find((k) => k.name === "other")!.id;
  expect((await admin.json("PUT", `/api/api-keys/${id}`, { priority: 650 })).body.priority).toBe(650);
  expect((await admin.json("PUT", `/api/api-keys/${id}`, { priority: "normal" })).body.priority).toBe("normal");
});

test("with the only slot busy, queued batch requests wait while interactive ones go first", async () => {
  const done: string[] = [];
  const hog = ask("batch", 300); // 1.5 s on the slot
  await slotTaken();
  const batch = Array.from({ length: 4 }, (_, i) => ask("batch").then((r) => (done.push(`batch-${i}`), r)));
  await waitFor(async () => (await queued()) === 4, { what: "the batch requests queued" });
  const interactive = Array.from({ length: 2 }, (_, i) =>
    ask("interactive").then((r) => (done.push(`interactive-${i}`), r)),
  );
  await waitFor(async () => (await queued()) === 6, { what: "the interactive requests queued" });
  const answers = await Promise.all([hog, ...batch, ...interactive]);
  expect(answers.map((a) => a.status)).toEqual(Array(7).fill(200));
  expect(done.slice(0, 2).sort()).toEqual(["interactive-0", "interactive-1"]);
  // history: how long each waited, and how many stood ahead when it came
  const first = answers[5];
  const rec = await waitFor(async () => {
    const r = await admin.json("GET", `/api/dashboard/request-responses/${first.headers.get("x-request-id")}`);
    return r.status === 200 ? r.body : null;
  });
  expect(rec.queue_ms).toBeGreaterThan(0);
  expect(rec.queue_position).toBe(0);
});

test("one key's 200 queued requests do not hold back another key's one", async () => {
  const order: string[] = [];
  const hog = ask("busy", 1000); // 5 s on the slot: time to queue the flood on a busy machine
  await slotTaken();
  const flood = Array.from({ length: 200 }, (_, i) => ask("busy", 1).then((r) => (order.push(`busy-${i}`), r)));
  await waitFor(async () => (await queued()) === 200, { what: "the flood queued", timeoutMs: 20_000 });
  const one = ask("other", 1).then((r) => (order.push("other"), r));
  const answers = await Promise.all([hog, ...flood, one]);
  expect(answers.every((a) => a.status === 200)).toBe(true);
  expect(order.indexOf("other")).toBeLessThanOrEqual(3);
});
