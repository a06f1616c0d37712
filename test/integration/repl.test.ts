/**
 * The ops console (`llm-router repl`) against a real cluster: a private
 * nats-server, a router (SERVICES=router) and one inference node. The REPL
 * process reads its commands from a pipe, as a script or a person would type.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import {
  ADMIN_PASSWORD,
  baseEnv,
  createKey,
  login,
  Proc,
  ROOT,
  startCli,
  startNats,
  startRouter,
  tempDir,
  writeModel,
} from "../helpers/procs";
import { routerClient, type RouterClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-chat";
let nats: { proc: Proc; url: string };
let router: { proc: Proc; url: string };
let node: Proc;
let repl: Proc;
let key: string;
/** With the API key. */
let user: RouterClient;

function startRepl(env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "bin/main.ts"), "repl"], {
    cwd: ROOT,
    // its own HOME: Moleculer's REPL keeps a history file there
    env: baseEnv({ HOME: tempDir("repl-home"), ...env }),
    stdio: ["pipe", "pipe", "pipe"],
  });
  return new Proc("repl", child);
}

/** Types `line` into the REPL and resolves the output it printed until the next prompt. */
async function run(line: string, timeoutMs = 15_000): Promise<string> {
  const start = repl.output.length;
  repl.child.stdin!.write(`${line}\n`);
  const done = await waitFor(
    () => {
      if (!repl.alive) throw new Error(`repl exited:\n${repl.output.slice(-3000)}`);
      const out = repl.output.slice(start);
      const end = out.indexOf("llm-router $");
      return end >= 0 ? out.slice(0, end) : null;
    },
    { timeoutMs, what: `the REPL to answer '${line}'` },
  );
  return done;
}

beforeAll(async () => {
  nats = await startNats();
  const cluster = {
    TRANSPORTER: nats.url,
    HEARTBEAT_INTERVAL: "1",
    HEARTBEAT_TIMEOUT: "3",
    LLM_NODE_HEARTBEAT_SECS: "2",
  };
  const models = tempDir("repl-models");
  writeModel(models, MODEL);
  node = startCli("node-a", {
    ...cluster,
    SERVICES: "inference",
    NODEID: "node-a",
    LLM_NODE_NAME: "machine-a",
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_PARALLEL: "2",
  });
  router = await startRouter("router", { ...cluster, SERVICES: "router", NODEID: "router-1" });
  key = await createKey(router.url);
  user = routerClient(router.url, { key });
  await waitFor(async () => (await user.models()).length === 1, {
    timeoutMs: 60_000,
    what: "the node serving the model",
  });
  repl = startRepl({ ...cluster, TRANSPORTER: nats.url.replace("nats://", "nats://ops:s3cret-pass@") });
  await repl.waitForOutput(/Connected to nats:\/\/\*\*\*@127\.0\.0\.1:\d+ as repl-\S+; router\(s\): router-1/);
  await repl.waitForOutput(/llm-router \$/);
}, 90_000);

afterAll(async () => {
  await Promise.all([repl?.stop(), router?.proc.stop(), node?.stop()]);
  await nats?.proc.stop();
});

describe("llm-router repl", () => {
  test("without TRANSPORTER it says it needs a cluster and exits 1", async () => {
    const alone = startCli("repl-alone", {}, ["repl"]);
    expect(await alone.exited).toBe(1);
    expect(alone.output).toMatch(/ops console joins a cluster .* set TRANSPORTER=nats:\/\/host:4222/);
  });

  test("nodes: the node table with its metrics", async () => {
    const out = await run("nodes");
    expect(out).toMatch(/NODE\s+NAME\s+STATUS\s+MODELS\s+ACTIVE\s+CAPACITY\s+CPU\s+GPU\s+VRAM\s+TOKENS\/S/);
    expect(out).toMatch(/node-a\s+machine-a\s+online\s+tiny-chat\s+0\s+2\s+\d+%\s+-\s+-\s+\d+\.\d/);
  });

  test("route: the pick, each candidate's score and factors", async () => {
    const out = await run(`route ${MODEL}`);
    expect(out).toContain(`model ${MODEL} via router router-1, strategy auto`);
    expect(out).toContain("decision: send to node-a");
    expect(out).toMatch(/\* node-a \(machine-a\) score=\S+ slots=0\/2/);
    expect(out).toMatch(/free_slots=2 busy_ratio=0 .*load_score=/);
    expect(await run("route no-such-model")).toContain("404 model_not_found");
  });

  test("drain and undrain a node, seen in nodes and route", async () => {
    expect(await run("drain node-a")).toContain("node-a is draining: no new requests; 0 in flight finish there");
    expect(await run("nodes")).toMatch(/node-a\s+machine-a\s+online, draining/);
    const route = await run(`route ${MODEL}`);
    expect(route).toContain("decision: 503 no_available_node");
    expect(route).toMatch(/filtered out:\n\s+node-a: draining/);
    expect(await run("undrain node-a")).toContain("node-a takes requests again");
    expect(await run(`route ${MODEL}`)).toContain("decision: send to node-a");
    expect(await run("drain ghost")).toMatch(/error: No node with id 'ghost'/);

    // each change is in the router's audit log, by the console's user, done or refused
    const admin = routerClient(router.url, { token: await login(router.url) });
    const log = (await admin.json("GET", "/api/audit")).body;
    const entries = (log.entries ?? log.data ?? log) as Array<Record<string, unknown>>;
    const repl = entries.filter((e) => String(e.action).startsWith("REPL "));
    expect(repl.map((e) => [e.action, e.target, e.status])).toEqual([
      ["REPL drain", "ghost", 404],
      ["REPL undrain", "node-a", 200],
      ["REPL drain", "node-a", 200],
    ]);
    expect(repl[0].actor).toMatch(/^repl:/);
  });

  test("history tail: one line per request, after a chat through the router", async () => {
    const res = await user.chat({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    expect(res.status).toBe(200);
    await res.json();
    // the record is written in a batch shortly after the request: ask until it is there
    const line = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ {2}tiny-chat {2}node-a {2}200 {2}\d+ ms {2}\d+→3 tok$/m;
    let last = "";
    await waitFor(async () => line.test((last = await run("history tail 5"))), {
      what: "the request in history tail",
    }).catch((err: Error) => {
      throw new Error(`${err.message}; last answer:\n${last}`);
    });
    expect(await run("history head")).toContain("error: unknown 'history head'");
  });

  test("models: served models with their nodes, and the catalog", async () => {
    const out = await run("models");
    expect(out).toMatch(/MODEL\s+STATUS\s+LOADED ON\s+AVAILABLE ON\n[- ]+\ntiny-chat\s+loaded\s+node-a\s+-/);
    expect(out).toMatch(/Catalog:\n\s+\(empty\)/);
  });

  test("unload and load: the model stays available on the node's disk, then is loaded again there", async () => {
    expect(await run("unload tiny-chat")).toContain("tiny-chat unloaded from node-a");
    const loadedOn = async () => (await user.models()).find((m) => m.id === MODEL) as { status?: string } | undefined;
    await waitFor(async () => (await loadedOn())?.status === "available", { what: "the model shown as available" });
    expect(await run("models")).toMatch(/tiny-chat\s+available\s+-\s+node-a/);
    expect(await run("unload tiny-chat node-a")).toContain("error: The model 'tiny-chat' is not loaded on 'node-a'");
    expect(await run("load tiny-chat node-a")).toContain("tiny-chat is loaded on node-a");
    await waitFor(async () => (await loadedOn())?.status === "loaded", { what: "the model shown as loaded" });
  });

  test("Moleculer's own commands: nodes as cluster-nodes, info without the NATS password", async () => {
    expect(await run("cluster-nodes")).toMatch(/node-a/);
    const info = await run("info");
    expect(info).toMatch(/\*\*\*@127\.0\.0\.1/);
    expect(repl.output).not.toContain("s3cret-pass");
    expect(repl.output).not.toContain(key);
    expect(repl.output).not.toContain(ADMIN_PASSWORD);
  });

  test("exit leaves the cluster and ends the process with 0", async () => {
    repl.child.stdin!.write("exit\n");
    expect(await repl.exited).toBe(0);
  });
});
