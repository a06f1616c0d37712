/**
 * LLM_ROUTER_PROCESSES: one router on two processes sharing its port,
 * embedded (no NATS: they talk over IPC through their primary). Each new
 * connection goes to one of them; whichever it reaches, keys, history,
 * metrics and revocation hold for the whole router. A process that dies is
 * started again; SIGTERM stops them all and exits 0.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { routerClient, sse } from "../helpers/client";
import { login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "processes-model";
const models = tempDir("processes-models");
fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "instant engine: never loaded");

const dataDir = tempDir("processes-data");
let router: { proc: Proc; url: string };
let admin: string;

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary JSON
  body: any;
  text: string;
}

/** One request on a connection of its own, so the cluster module hands it to the next process. */
function fresh(method: string, p: string, auth?: string, body?: unknown): Promise<Answer> {
  const url = new URL(p, router.url);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent: false,
        headers: {
          ...(data ? { "content-type": "application/json" } : {}),
          ...(auth ? { authorization: `Bearer ${auth}` } : {}),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          let parsed: unknown = null;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON (metrics) */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

/** A streamed chat on a connection of its own: `started` at its first chunk, `done` with the whole answer. */
function streamed(key: string, content: string): { started: Promise<void>; done: Promise<Answer> } {
  let onStart!: () => void;
  const started = new Promise<void>((resolve) => (onStart = resolve));
  const data = JSON.stringify({ model: MODEL, messages: [{ role: "user", content }], max_tokens: 100, stream: true });
  const done = new Promise<Answer>((resolve, reject) => {
    const req = http.request(
      new URL("/v1/chat/completions", router.url),
      {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
          onStart();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: null, text }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
  done.catch(() => onStart());
  return { started, done };
}

/** The node IDs that answered `n` fresh connections to /health. */
async function processesAnswering(n: number): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let i = 0; i < n; i++) ids.add((await fresh("GET", "/health")).body.node_id);
  return ids;
}

/**
 * Until each process has the other's services (Moleculer sends a process's
 * service list a moment after it starts): two scrapes, one per process, each
 * report both processes.
 */
async function bothKnowEachOther(): Promise<void> {
  await waitFor(
    async () => {
      for (let i = 0; i < 2; i++) {
        const text = (await fresh("GET", "/metrics", admin)).text;
        if (!text.includes('router_process="0"') || !text.includes('router_process="1"')) return false;
      }
      return true;
    },
    { timeoutMs: 20_000, what: "each process reporting both in /metrics" },
  );
}

const chat = (key: string, content: string) =>
  fresh("POST", "/v1/chat/completions", key, { model: MODEL, messages: [{ role: "user", content }], max_tokens: 3 });

/** llm_router_requests_total per router_process, from one scrape. */
function requestsByProcess(metricsText: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metricsText.split("\n")) {
    const m = line.match(/^llm_router_requests_total\{(.*)\} (\d+)/);
    if (!m) continue;
    const proc = m[1].match(/router_process="(\d+)"/)?.[1] ?? "?";
    out.set(proc, (out.get(proc) ?? 0) + Number(m[2]));
  }
  return out;
}

beforeAll(async () => {
  router = await startRouter("router", {
    LLM_ROUTER_PROCESSES: "2",
    NODEID: "procs",
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    HEARTBEAT_INTERVAL: "1",
    HEARTBEAT_TIMEOUT: "3",
    LLM_NODE_HEARTBEAT_SECS: "1",
    LLM_ROUTER_DATA_DIR: dataDir,
    // a token every 20 ms: the streams of the last test run while the router stops
    LLM_NODE_INSTANT_MS_PER_TOKEN: "20",
    LLM_SHUTDOWN_TIMEOUT_SECS: "20",
  });
  await waitFor(async () => (await processesAnswering(4)).size === 2, {
    timeoutMs: 30_000,
    what: "both router processes answering",
  });
  admin = await login(router.url);
  await bothKnowEachOther();
}, 60_000);

afterAll(async () => {
  await router?.proc.stop();
});

describe("a router on two processes (LLM_ROUTER_PROCESSES=2, no NATS)", () => {
  let key: string;

  test("both serve the port; a key made through one works on both; history and /metrics count every request", async () => {
    expect(await processesAnswering(4)).toEqual(new Set(["procs", "procs-1"]));
    const created = await fresh("POST", "/api/api-keys", admin, { name: "shared" });
    expect(created.status).toBe(201);
    key = created.body.key;
    // the gateway sees the embedded node once its heartbeat crossed over
    await waitFor(async () => (await Promise.all([0, 1].map(() => chat(key, "warm")))).every((r) => r.status === 200), {
      timeoutMs: 20_000,
      what: "chat answered by both processes",
    });
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => chat(key, `hello ${i}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(answers.every((a) => a.body.choices[0].message.content.length > 0)).toBe(true);

    // 2 warm-ups + 8: in history (the gateway sends its records in batches to process 0)
    const history = await waitFor(
      async () => {
        const r = await fresh("GET", "/api/dashboard/request-responses?per_page=50", admin);
        return r.status === 200 && r.body.total_count >= 10 ? r.body : null;
      },
      { what: "every request in history" },
    );
    expect(history.total_count).toBe(10);
    expect(
      history.records.filter((r: { request_body: unknown }) => JSON.stringify(r.request_body).includes("hello")),
    ).toHaveLength(8);

    // one scrape, whichever process it reaches, reports both processes' requests
    for (let i = 0; i < 2; i++) {
      const scrape = await fresh("GET", "/metrics", admin);
      expect(scrape.status).toBe(200);
      const byProcess = requestsByProcess(scrape.text);
      expect([...byProcess.keys()].sort()).toEqual(["0", "1"]);
      expect([...byProcess.values()].reduce((a, b) => a + b, 0)).toBe(10);
    }
  });

  test("a dashboard connected to one process sees the requests both serve in its live feed", async () => {
    const events: Array<{ model: string; status: number }> = [];
    const feed = http.request(new URL("/api/dashboard/events", router.url), {
      agent: false,
      headers: { authorization: `Bearer ${admin}` },
    });
    const opened = new Promise<http.IncomingMessage>((resolve, reject) => {
      feed.on("response", resolve);
      feed.on("error", reject);
    });
    feed.end();
    const res = await opened;
    expect(res.statusCode).toBe(200);
    let buffered = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buffered += chunk;
      const frames = buffered.split("\n\n");
      buffered = frames.pop() ?? "";
      for (const f of frames) {
        const data = f.match(/^event: request\ndata: (.*)$/m);
        if (data) events.push(JSON.parse(data[1]));
      }
    });
    try {
      const before = requestsByProcess((await fresh("GET", "/metrics", admin)).text);
      // fresh connections alternate between the processes: both serve some of these
      const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => chat(key, `feed ${i}`)));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      const after = requestsByProcess((await fresh("GET", "/metrics", admin)).text);
      for (const p of ["0", "1"]) expect(after.get(p)!).toBeGreaterThan(before.get(p)!);
      await waitFor(() => events.length >= 4, { what: "four requests in the live feed" });
      expect(events).toHaveLength(4);
      expect(events.every((e) => e.model === MODEL && e.status === 200)).toBe(true);
    } finally {
      res.destroy();
    }
  });

  test("a revoked key stops working on both processes at once", async () => {
    // both processes have admitted the key just now (the gateway keeps it)
    expect((await Promise.all([0, 1].map(() => chat(key, "before")))).map((a) => a.status)).toEqual([200, 200]);
    const list = await fresh("GET", "/api/api-keys", admin);
    const id = list.body.find((k: { name: string }) => k.name === "shared").id;
    expect((await fresh("DELETE", `/api/api-keys/${id}`, admin)).status).toBe(200);
    const after = await Promise.all(Array.from({ length: 4 }, () => chat(key, "after")));
    expect(after.map((a) => a.status)).toEqual([401, 401, 401, 401]);
    expect(after[0].body.error.code).toBe("invalid_api_key");
  });

  test("a key's tokens per minute are counted for both processes together", async () => {
    // 100 tokens a minute; each chat spends 11 (8 in, 3 out): about 10 get through, whichever process serves them
    const limited = (await fresh("POST", "/api/api-keys", admin, { name: "tpm", rate_limit_tpm: 100 })).body.key;
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await chat(limited, `tpm ${i}`)).status);
    const served = statuses.filter((s) => s === 200).length;
    // counted per process, each would let about 10 through
    expect(served).toBeGreaterThanOrEqual(9);
    expect(served).toBeLessThanOrEqual(12);
    expect(statuses.slice(served + 1).every((s) => s === 429)).toBe(true);
    const last = await chat(limited, "again");
    expect(last.status).toBe(429);
    expect(last.body.error.code).toBe("rate_limit_exceeded");
  });

  test("a process that dies is started again", async () => {
    const gateway = pidOf(1);
    process.kill(gateway, "SIGKILL");
    await router.proc.waitForOutput(/router process 1 \(pid \d+\) exited \(SIGKILL\); starting it again/);
    await waitFor(() => pidOf(1) !== gateway, { what: "a new process 1" });
    await waitFor(async () => (await processesAnswering(4)).size === 2, {
      timeoutMs: 30_000,
      what: "the gateway answering again",
    });
    await bothKnowEachOther();
    const key = (await fresh("POST", "/api/api-keys", admin, { name: "after-restart" })).body.key;
    await waitFor(
      async () => (await Promise.all([0, 1].map(() => chat(key, "again")))).every((r) => r.status === 200),
      {
        timeoutMs: 20_000,
        what: "chat through both processes again",
      },
    );
  });

  test("SIGTERM: streams in flight on both processes finish whole, every process stops, exit 0, history kept", async () => {
    const key = (await fresh("POST", "/api/api-keys", admin, { name: "streams" })).body.key;
    const pids = [pidOf(0), pidOf(1)];
    // the cluster module hands new connections to the processes in turn: health, stream, stream, health
    // land on A, B, A, B, so one stream runs on each process (the two health answers show the turns)
    const first = (await fresh("GET", "/health")).body.node_id;
    const streams: Array<Promise<Answer>> = [];
    for (const i of [0, 1]) {
      const s = streamed(key, `going down ${i}`);
      await s.started;
      streams.push(s.done);
    }
    const second = (await fresh("GET", "/health")).body.node_id;
    expect(new Set([first, second])).toEqual(new Set(["procs", "procs-1"]));
    router.proc.child.kill("SIGTERM");
    // no process takes a new connection from now on (the streams still have more than a second to run)
    await waitFor(
      () =>
        fresh("GET", "/health").then(
          () => false,
          () => true,
        ),
      { timeoutMs: 1000, what: "new connections refused while the streams finish" },
    );
    const answers = await Promise.all(streams);
    for (const a of answers) {
      expect(a.status).toBe(200);
      const { done, chunks } = sse(a.text);
      expect(done).toBe(true);
      expect(chunks.filter((c) => c.choices?.[0]?.delta?.content)).toHaveLength(100);
    }
    const code = await router.proc.exited;
    expect(code).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(router.proc.output).toMatch(/SIGTERM: draining the router processes \(gateways first\)/);

    // the same data dir on one process: both streams were recorded, wherever they were served
    router = await startRouter("router-again", { LLM_ROUTER_DATA_DIR: dataDir, NODEID: "again" });
    const api = routerClient(router.url, { token: await login(router.url) });
    const list = await api.get("/api/dashboard/request-responses?q=going%20down");
    const body = (await list.json()) as { total_count: number; records: Array<{ status: number; tokens_out: number }> };
    expect(body.total_count).toBe(2);
    expect(body.records.map((r) => [r.status, r.tokens_out])).toEqual([
      [200, 100],
      [200, 100],
    ]);
  }, 60_000);
});

/** The pid of router process `index`, from what the primary logged when it started it (the latest one). */
function pidOf(index: number): number {
  const started = [...router.proc.output.matchAll(new RegExp(`router process ${index} started \\(pid (\\d+)\\)`, "g"))];
  expect(started.length).toBeGreaterThan(0);
  return Number(started[started.length - 1][1]);
}
