/**
 * Failures a cluster meets in real life, on real processes over a private NATS:
 * a node that hangs (SIGSTOP) is retried around, benched, and used again after
 * its cooldown; NATS restarts and the cluster recovers without restarting anything.
 */
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, login, type Proc, startCli, startNats, startRouter, tempDir, writeModel } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-resilient";
let nats: { proc: Proc; url: string };
let router: { proc: Proc; url: string };
const nodes: Record<string, Proc> = {};
/** With the API key; its chat() asks MODEL "hi" for 4 tokens. */
let user: RouterClient;
/** With the admin's login. */
let api: RouterClient;

async function servingNodes(): Promise<string[]> {
  return (await user.models().catch(() => []))[0]?.nodes ?? [];
}

beforeAll(async () => {
  nats = await startNats();
  // a long Moleculer heartbeat timeout, so a stopped node stays "connected" and must be caught by timeouts
  const cluster = {
    TRANSPORTER: nats.url,
    HEARTBEAT_INTERVAL: "1",
    HEARTBEAT_TIMEOUT: "60",
    LLM_NODE_HEARTBEAT_SECS: "1",
  };
  const models = tempDir("resilience-models");
  writeModel(models, MODEL);
  for (const id of ["node-a", "node-b"]) {
    nodes[id] = startCli(id, { ...cluster, SERVICES: "inference", NODEID: id, LLM_NODE_MODELS_DIR: models });
  }
  router = await startRouter("router", {
    ...cluster,
    SERVICES: "router",
    NODEID: "router-r",
    LLM_ROUTER_REQUEST_TIMEOUT: "2",
    LLM_ROUTER_NODE_FAILURE_THRESHOLD: "2",
    LLM_ROUTER_NODE_COOLDOWN_SECS: "3",
    LLM_ROUTER_NODE_TIMEOUT: "60",
    // the strategy is not what is tested: round robin keeps sending node-b its turn whatever the timings
    // (a latency-aware choice may avoid it after one timeout when the machine is busy)
    LLM_ROUTER_LOAD_BALANCER_MODE: "round_robin",
  });
  user = routerClient(router.url, {
    key: await createKey(router.url),
    chat: { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
  });
  api = routerClient(router.url, { token: await login(router.url) });
  await waitFor(async () => (await servingNodes()).length === 2, { timeoutMs: 60_000, what: "both nodes serving" });
}, 90_000);

afterAll(async () => {
  for (const n of Object.values(nodes)) if (n.alive) n.child.kill("SIGCONT");
  await Promise.all([router?.proc.stop(), ...Object.values(nodes).map((n) => n.stop())]);
  await nats?.proc.stop();
});

test("a hung node: requests are retried on the other, it is benched, then tried again after its cooldown", async () => {
  nodes["node-b"].child.kill("SIGSTOP");
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await user.chat();
      statuses.push(res.status);
      expect(res.headers.get("x-router-node")).toBe("node-a");
      await res.text();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(router.proc.output).toMatch(/Node node-b failed 2 times in a row: benched for 3s/);
    const stats = await api.get("/api/nodes/node-b");
    expect(stats.status).toBe(200);
  } finally {
    nodes["node-b"].child.kill("SIGCONT");
  }
  // after the cooldown node-b gets requests again
  const served = new Set<string>();
  await waitFor(
    async () => {
      const burst = await Promise.all([user.chat(), user.chat(), user.chat(), user.chat()]);
      for (const r of burst) {
        expect(r.status).toBe(200);
        served.add(r.headers.get("x-router-node") ?? "");
        await r.text();
      }
      return served.has("node-b");
    },
    { timeoutMs: 20_000, intervalMs: 500, what: "node-b to take requests again" },
  );
});

test("NATS restarts: the cluster recovers without restarting the router or the nodes", async () => {
  const port = Number(new URL(nats.url).port);
  await nats.proc.stop();
  const down = await user.chat();
  expect(down.status).toBeGreaterThanOrEqual(500);
  await down.text();
  nats = await startNats(port);
  await waitFor(
    async () => {
      const res = await user.chat();
      await res.text();
      return res.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 250, what: "requests to succeed again" },
  );
  await waitFor(async () => (await servingNodes()).length === 2, { timeoutMs: 30_000, what: "both nodes back" });
  expect(router.proc.alive && nodes["node-a"].alive && nodes["node-b"].alive).toBe(true);
});
