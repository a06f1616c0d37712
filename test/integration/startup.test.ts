/**
 * Start and stop of `npm start` (every service and the embedded inference
 * node in one process, the demo model written at first start) on real
 * processes, with a history store that takes a moment to load:
 * - a readiness probe (`GET /health?ready=1`) answers 503 "starting" until
 *   history is loaded and the node serves, then 200 "ok", and from then on a
 *   chat completion and the history routes answer at once;
 * - SIGTERM as soon as the port answers (during start) stops it cleanly;
 * - so does SIGTERM to a router on two processes while they still load.
 */
import path from "node:path";
import { writeNedbFile } from "../../bench/history-data";
import { DEMO_MODEL_ID } from "../../lib/inference/demo-model";
import { routerClient } from "../helpers/client";
import { createKey, freePort, login, startCli, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

/** Records in the history store a router starts with (about 20 MB of NeDB file). */
const RECORDS = 10_000;

interface Health {
  status: string;
  node_id: string;
  uptime_s: number;
  nodes: { online: number; total: number } | null;
  queued_requests: number | null;
  waiting_for: string[];
}

const procs: Proc[] = [];

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop("SIGKILL")));
});

/** A data dir whose history store holds RECORDS records of the last week. */
function dataDirWithHistory(): string {
  const dir = tempDir("startup-data");
  writeNedbFile(path.join(dir, "history.db"), RECORDS, Date.now());
  return dir;
}

/** `npm start` on `port`: all services, the llama engine with the demo model it writes into an empty models dir. */
function startAllInOne(name: string, port: number, extra: Record<string, string> = {}): Proc {
  const proc = startCli(name, {
    LLM_ROUTER_PORT: String(port),
    LLM_ROUTER_DATA_DIR: dataDirWithHistory(),
    LLM_NODE_MODELS_DIR: tempDir("startup-models"),
    LLM_NODE_DEMO_MODEL: "true",
    ...extra,
  });
  procs.push(proc);
  return proc;
}

async function health(url: string, query = ""): Promise<{ code: number; body: Health }> {
  const r = await routerClient(url).json<Health>("GET", `/health${query}`);
  return { code: r.status, body: r.body };
}

/** Resolves with `proc`'s exit code, or fails when it has not exited within `ms`. */
function exitWithin(proc: Proc, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${proc.name} still running ${ms} ms after SIGTERM:\n${proc.output.slice(-3000)}`)),
      ms,
    );
  });
  return Promise.race([proc.exited, late]).finally(() => clearTimeout(timer));
}

describe("a router that starts", () => {
  test("/health?ready=1: 503 starting until history is loaded and the node serves, then ok; chat and history at once", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = startAllInOne("router", port);
    const probes: Array<{ code: number; body: Health }> = [];
    const plain: Array<{ code: number; body: Health }> = [];
    await waitFor(
      async () => {
        if (!proc.alive) throw new Error(`router exited:\n${proc.output.slice(-3000)}`);
        const probe = await health(url, "?ready=1"); // refused until the port opens: polled again
        probes.push(probe);
        if (probe.code === 200) return true;
        // liveness: plain /health answers 200 all along
        plain.push(await health(url));
        return false;
      },
      { timeoutMs: 120_000, intervalMs: 20, what: "the router to say it is ready" },
    );

    // straight to ok, or starting (503, saying what it waits for) until ok
    for (const { code, body } of probes) {
      expect(Object.keys(body).sort()).toEqual(
        ["history", "node_id", "nodes", "queued_requests", "routers", "status", "uptime_s", "waiting_for"].sort(),
      );
      if (code === 503) {
        expect(body.status).toBe("starting");
        expect(body.waiting_for.length).toBeGreaterThan(0);
      } else
        expect({ code, status: body.status, waiting_for: body.waiting_for }).toEqual({
          code: 200,
          status: "ok",
          waiting_for: [],
        });
    }
    for (const { code, body } of plain) {
      expect(code).toBe(200);
      expect(["starting", "ok"]).toContain(body.status);
    }

    // once it says ok, no retries: the node serves, history is loaded
    const user = routerClient(url, { key: await createKey(url) });
    const chat = await user.chat({
      model: DEMO_MODEL_ID,
      messages: [{ role: "user", content: "ready?" }],
      max_tokens: 4,
    });
    const text = await chat.text();
    expect({ status: chat.status, text }).toMatchObject({ status: 200 });
    expect(chat.headers.get("x-router-node")).toBe(probes[probes.length - 1].body.node_id);
    expect(JSON.parse(text).choices[0].message).toBeDefined();

    const admin = routerClient(url, { token: await login(url) });
    const list = await admin.get("/api/dashboard/request-responses?per_page=1");
    expect(list.status).toBe(200);
    expect(((await list.json()) as { total_count: number }).total_count).toBeGreaterThanOrEqual(RECORDS);
    expect((await admin.get("/api/dashboard/stats")).status).toBe(200);

    proc.child.kill("SIGTERM");
    expect(await exitWithin(proc, 30_000)).toBe(0);
  }, 180_000);
});

describe("a router stopped while it starts", () => {
  test("SIGTERM as soon as the port answers: exit 0, no TypeError, no failed start", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = startAllInOne("router-stopped", port);
    const first = await waitFor(
      async () => {
        if (!proc.alive) throw new Error(`router exited:\n${proc.output.slice(-3000)}`);
        const res = await routerClient(url).get("/health");
        if (res.status === 200) proc.child.kill("SIGTERM");
        return res.status === 200 ? ((await res.json()) as Health) : null;
      },
      { timeoutMs: 90_000, intervalMs: 10, what: "the port to answer" },
    );
    // the signal came during start: history and the node were still loading
    expect(first.status).toBe("starting");
    expect(await exitWithin(proc, 40_000)).toBe(0);
    expect(proc.output).toMatch(/SIGTERM: draining/);
    expect(proc.output).not.toMatch(/TypeError/);
    expect(proc.output).not.toMatch(/Unable to start|llm-router: /);
    expect(proc.output).not.toMatch(/\bERROR\b/);
  }, 150_000);

  test("a router on two processes: SIGTERM to the primary while they still load stops both, exit 0", async () => {
    const port = await freePort();
    const proc = startCli("router-processes", {
      LLM_ROUTER_PROCESSES: "2",
      LLM_ROUTER_PORT: String(port),
      LLM_ROUTER_DATA_DIR: tempDir("startup-processes"),
      LLM_NODE_MODELS_DIR: tempDir("startup-processes-models"),
      NODEID: "startup",
    });
    procs.push(proc);
    // both forked, neither ready (they load their modules for a second or two): a stop sent now used to be lost
    await proc.waitForOutput(/router process 1 started/);
    proc.child.kill("SIGTERM");
    expect(await exitWithin(proc, 40_000)).toBe(0);
    expect(proc.output).toMatch(/SIGTERM: draining the router processes/);
    expect(proc.output).not.toMatch(/TypeError|failed to start/);
  }, 90_000);
});

describe("a router whose services cannot run together", () => {
  test("an api without a balancer in its process is refused at start, saying what to add", async () => {
    const proc = startCli("api-alone", {
      SERVICES: "api,registry,auth,apikeys",
      LLM_ROUTER_DATA_DIR: tempDir("alone"),
    });
    procs.push(proc);
    expect(await proc.exited).not.toBe(0);
    expect(proc.output).toMatch(
      /SERVICES=api,registry,auth,apikeys: the api routes through a balancer in its own process: add balancer/,
    );
  });
});
