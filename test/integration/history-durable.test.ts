/**
 * History that loses nothing, on a whole cluster: three router peers
 * (`SERVICES=router`) on one PostgreSQL (a private server the test stops and
 * starts) and one NATS server with JetStream (private, its own store), two
 * inference nodes. Records go through the JetStream stream: a router killed
 * with SIGKILL under load loses none of the requests it answered, and the
 * database down for 30 s under load loses none either; nothing is written
 * twice. The nodes run the instant engine: what is tested is the router's
 * bookkeeping, under more requests than tiny llama.cpp models answer on two
 * cores (real inference is tested elsewhere).
 */
import fs from "node:fs";
import path from "node:path";
import { Client } from "pg";
import { routerClient } from "../helpers/client";
import { startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres";
import { createKey, startCli, startNats, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "durable-model";
let pg: PrivatePostgres;
let nats: { proc: Proc; url: string };
const routers: Array<{ proc: Proc; url: string }> = [];
const nodes: Proc[] = [];
let key: string;
/** Numbers every request's prompt, across loads: one record per prompt. */
let probe = 0;

const cluster = () => ({ TRANSPORTER: nats.url, HEARTBEAT_INTERVAL: "1", HEARTBEAT_TIMEOUT: "3" });

async function sql<T>(text: string): Promise<T[]> {
  const c = new Client({ connectionString: pg.url });
  await c.connect();
  try {
    return (await c.query(text)).rows as T[];
  } finally {
    await c.end();
  }
}

interface Load {
  /** Record ids (X-Request-Id) of the requests whose whole answer arrived, and when, by router URL. */
  answered: Array<{ id: string; url: string; at: number }>;
  failed: number;
  stop(): Promise<void>;
}

/** `concurrency` clients sending chat requests round-robin to the routers at `urls` (read when each request starts). */
function startLoad(urls: () => string[], concurrency: number): Load {
  const load: Load = { answered: [], failed: 0, stop: async () => undefined };
  let running = true;
  const client = async () => {
    while (running) {
      const list = urls();
      const n = ++probe;
      const url = list[n % list.length];
      try {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: `probe ${n}` }], max_tokens: 4 }),
        });
        const body = (await res.json()) as { choices?: unknown[] };
        if (res.status === 200 && body.choices) {
          load.answered.push({ id: res.headers.get("x-request-id")!, url, at: Date.now() });
        } else load.failed++;
      } catch {
        load.failed++; // a killed router: the client never got an answer
      }
    }
  };
  const clients = Array.from({ length: concurrency }, client);
  load.stop = async () => {
    running = false;
    await Promise.all(clients);
  };
  return load;
}

/** Waits until the load has had `count` more answers than now. */
const answers = (load: Load, count: number) => {
  const target = load.answered.length + count;
  return waitFor(() => load.answered.length >= target, { timeoutMs: 60_000, what: `${count} more answers` });
};

/** Waits until every router's history is written (its stream backlog empty) and returns the stored ids. */
async function settledIds(urls: string[]): Promise<Set<string>> {
  for (const url of urls) {
    await waitFor(async () => (await routerClient(url).json("GET", "/health")).body.history?.waiting === 0, {
      timeoutMs: 60_000,
      what: `history written (${url})`,
    });
  }
  return new Set((await sql<{ id: string }>("SELECT id FROM history")).map((r) => r.id));
}

beforeAll(async () => {
  pg = await startPrivatePostgres();
  nats = await startNats(undefined, { jetstream: true });
  const models = tempDir("durable-models");
  fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "instant engine: never loaded");
  for (const id of ["durable-node-1", "durable-node-2"]) {
    nodes.push(
      startCli(id, {
        ...cluster(),
        SERVICES: "inference",
        NODEID: id,
        LLM_NODE_MODELS_DIR: models,
        LLM_NODE_ENGINE: "instant",
        LLM_NODE_INSTANT_MS_PER_TOKEN: "2",
        LLM_NODE_HEARTBEAT_SECS: "1",
      }),
    );
  }
  // three routers start together on an empty database: the schema is made once
  routers.push(
    ...(await Promise.all(
      ["durable-a", "durable-b", "durable-c"].map((id) =>
        startRouter(id, { ...cluster(), SERVICES: "router", NODEID: id, LLM_ROUTER_DATABASE_URL: pg.url }),
      ),
    )),
  );
  key = await createKey(routers[0].url);
  for (const r of routers) {
    await waitFor(
      async () => {
        const health = (await routerClient(r.url).json("GET", "/health")).body;
        const models = await routerClient(r.url, { key }).models();
        return health.routers === 3 && health.history?.via === "stream" && models.some((m) => m.id === MODEL);
      },
      { timeoutMs: 60_000, what: `${r.url} to see the cluster, the stream and the model` },
    );
  }
}, 120_000);

afterAll(async () => {
  await Promise.all([...routers.map((r) => r.proc.stop()), ...nodes.map((n) => n.stop())]);
  await nats?.proc.stop();
  pg?.destroy();
});

test("three routers starting together on an empty database migrate it once and make one admin", async () => {
  const migrations = await sql<{ name: string }>("SELECT name FROM schema_migrations");
  expect(migrations.length).toBeGreaterThan(0);
  expect(new Set(migrations.map((m) => m.name)).size).toBe(migrations.length);
  expect(await sql("SELECT id FROM users")).toHaveLength(1);
});

test("a router killed with SIGKILL under load: the others keep serving; every answered request is in history once", async () => {
  const live = [...routers];
  const load = startLoad(() => live.map((r) => r.url), 4);
  try {
    await answers(load, 60);
    const victim = live.splice(1, 1)[0];
    const killedAt = Date.now();
    await victim.proc.stop("SIGKILL");
    // the survivors go on answering (answers begun after the kill, from each of them)
    await waitFor(() => live.every((r) => load.answered.some((a) => a.url === r.url && a.at > killedAt + 500)), {
      timeoutMs: 30_000,
      what: "answers from both survivors after the kill",
    });
    await answers(load, 20);
    expect(load.answered.some((a) => a.url === victim.url)).toBe(true);
  } finally {
    await load.stop();
  }
  const stored = await settledIds(routers.filter((r) => r.proc.alive).map((r) => r.url));
  const missing = load.answered.filter((a) => !stored.has(a.id));
  expect(missing).toEqual([]);
  // one record per request: no request's record under two ids
  const probes = await sql<{ probe: string; n: string }>(
    "SELECT request_json AS probe, count(*) AS n FROM history GROUP BY request_json HAVING count(*) > 1",
  );
  expect(probes).toEqual([]);
}, 120_000);

test("PostgreSQL down for 30 s under load: requests are served, history says it is behind, and nothing is lost or doubled", async () => {
  const live = routers.filter((r) => r.proc.alive);
  const load = startLoad(() => live.map((r) => r.url), 3);
  let downAt = 0;
  try {
    await answers(load, 20);
    pg.stop();
    downAt = Date.now();
    await answers(load, 40);
    await waitFor(
      async () => {
        const h = (await routerClient(live[0].url).json("GET", "/health")).body.history;
        return h.waiting > 0 && h.unreachable_since !== null;
      },
      { timeoutMs: 30_000, what: "/health to say history is behind" },
    );
    await waitFor(() => Date.now() - downAt >= 30_000, { timeoutMs: 40_000, what: "30 s of outage" });
    expect(load.answered.filter((a) => a.at > downAt).length).toBeGreaterThan(40);
    pg.start();
    await answers(load, 20);
  } finally {
    await load.stop();
  }
  const stored = await settledIds(live.map((r) => r.url));
  expect(load.answered.filter((a) => !stored.has(a.id))).toEqual([]);
  const doubled = await sql("SELECT request_json FROM history GROUP BY request_json HAVING count(*) > 1");
  expect(doubled).toEqual([]);
  for (const r of live) {
    expect((await routerClient(r.url).json("GET", "/health")).body.history.unreachable_since).toBeNull();
  }
}, 150_000);
