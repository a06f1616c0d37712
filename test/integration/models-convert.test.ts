/**
 * Conversion of a Hugging Face repository without GGUF, with real processes:
 * a hub stand-in serving safetensors and config files, a router whose
 * LLM_ROUTER_CONVERT_SCRIPT is a small Python stand-in for llama.cpp's
 * convert_hf_to_gguf.py (it checks its arguments and copies a generated GGUF
 * to --outfile), and an inference node over NATS. Registration becomes a task,
 * the result joins the catalog, a node fetches it from the router over the
 * cluster and answers chat with it; a failure keeps the script's reason across
 * a router restart and can be restarted; a conversion cut short by SIGTERM is
 * taken up again; a running one can be cancelled; without the script the
 * operator is told what to install.
 */
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { routerClient, type Json, type RouterClient } from "../helpers/client";
import {
  cliAgainst,
  createKey,
  login,
  startCli,
  startNats,
  startRouter,
  tempDir,
  writeModel,
  type Proc,
} from "../helpers/procs";
import { waitFor } from "../helpers/wait";
import { ggufBytes, startHubStandIn, type HubStandIn } from "../helpers/standins/hub";

const FAKE_CONVERTER = String.raw`
import json, os, shutil, sys, time
here = os.path.dirname(os.path.abspath(__file__))
src, args = sys.argv[1], sys.argv[2:]
out = args[args.index("--outfile") + 1]
outtype = args[args.index("--outtype") + 1]
cfg = json.load(open(os.path.join(src, "config.json")))
with open(os.path.join(here, "calls.log"), "a") as f:
    f.write(json.dumps({"repo": cfg["repo"], "out": out, "outtype": outtype, "files": sorted(os.listdir(src))}) + "\n")
print("INFO:hf-to-gguf:Loading model: " + cfg["repo"], file=sys.stderr, flush=True)
if cfg.get("mode") == "fail" and not os.path.exists(os.path.join(here, "fixed")):
    raise NotImplementedError("Architecture 'FancyForCausalLM' not supported!")
if cfg.get("mode") == "slow":
    with open(os.path.join(here, cfg["repo"].replace("/", "_") + ".pid"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(here, cfg["release"])):
        print("INFO:hf-to-gguf:writing tensors", file=sys.stderr, flush=True)
        time.sleep(0.05)
shutil.copyfile(os.path.join(here, "result.gguf"), out)
print("INFO:hf-to-gguf:Model successfully exported to " + out, file=sys.stderr)
`;

const enc = encodeURIComponent;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const scripts = tempDir("convert-script");
const script = path.join(scripts, "convert_hf_to_gguf.py");
const result = ggufBytes("converted", 21);
const dataDir = tempDir("convert-data");

let hub: HubStandIn;
let nats: { proc: Proc; url: string };
let router: { proc: Proc; url: string };
let node: { proc: Proc; dir: string };
/** With the admin's login, on the router running now. */
let admin: RouterClient;
/** With an API key. */
let user: RouterClient;
let cluster: Record<string, string>;

async function startTheRouter(withScript = true): Promise<void> {
  router = await startRouter("router", {
    ...cluster,
    SERVICES: "router",
    NODEID: "router-1",
    HF_BASE_URL: hub.url,
    LLM_ROUTER_DATA_DIR: dataDir,
    ...(withScript ? { LLM_ROUTER_CONVERT_SCRIPT: script } : {}),
  });
  admin = routerClient(router.url, { token: await login(router.url) });
}

const task = async (id: string): Promise<Json> => (await admin.json("GET", `/api/tasks/${id}`)).body;

/** Waits for a task to reach `status` (failing early when it ends otherwise). */
function taskReaches(id: string, status: string, timeoutMs = 30_000): Promise<Json> {
  return waitFor(
    async () => {
      const t = await task(id);
      if (t.status === status) return t;
      if (["done", "failed", "cancelled"].includes(t.status)) throw new Error(`task ended ${t.status}: ${t.error}`);
      return null;
    },
    { timeoutMs, intervalMs: 50, what: `task ${id} to be ${status}` },
  );
}

/** Whether a process runs (a zombie does not count). */
function running(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

const pidOf = (repo: string) => Number(fs.readFileSync(path.join(scripts, `${repo.replace("/", "_")}.pid`), "utf8"));
const fileRequests = (repo: string, file: string) =>
  hub.requests.filter((r) => r.path === `/${repo}/resolve/main/${file}`).length;

function weightsRepo(repo: string, config: Record<string, unknown>): Map<string, Buffer> {
  return new Map([
    ["README.md", Buffer.from("# weights\n")],
    ["config.json", Buffer.from(JSON.stringify({ repo, architectures: ["LlamaForCausalLM"], ...config }))],
    ["tokenizer.json", Buffer.from('{"model":{"type":"BPE"}}')],
    ["model.safetensors", Buffer.alloc(200_000, 3)],
    ["original/consolidated.00.pth", Buffer.alloc(1000, 4)],
  ]);
}

beforeAll(async () => {
  fs.writeFileSync(script, FAKE_CONVERTER);
  fs.writeFileSync(path.join(scripts, "result.gguf"), result);
  hub = await startHubStandIn();
  hub.repos.set("org/conv-ok", weightsRepo("org/conv-ok", {}));
  hub.repos.set("org/conv-fail", weightsRepo("org/conv-fail", { mode: "fail" }));
  hub.repos.set("org/conv-slow", weightsRepo("org/conv-slow", { mode: "slow", release: "release-slow" }));
  hub.repos.set("org/conv-cancel", weightsRepo("org/conv-cancel", { mode: "slow", release: "release-cancel" }));
  hub.repos.set("org/conv-none", weightsRepo("org/conv-none", {}));
  hub.repos.set("org/conv-cli", weightsRepo("org/conv-cli", {}));

  nats = await startNats();
  cluster = { TRANSPORTER: nats.url, HEARTBEAT_INTERVAL: "1", HEARTBEAT_TIMEOUT: "3", LLM_NODE_HEARTBEAT_SECS: "2" };
  const dir = tempDir("convert-node");
  writeModel(dir, "base");
  node = {
    dir,
    proc: startCli("node-a", { ...cluster, SERVICES: "inference", NODEID: "node-a", LLM_NODE_MODELS_DIR: dir }),
  };
  await startTheRouter();
  user = routerClient(router.url, { key: await createKey(router.url) });
  // listed on /v1/models: the node is online and its actions are known to the router
  await waitFor(async () => (await user.models()).some((m) => m.id === "base"), {
    timeoutMs: 60_000,
    what: "the node online",
  });
}, 90_000);

afterAll(async () => {
  await Promise.all([router?.proc.stop(), node?.proc.stop()]);
  await nats?.proc.stop();
  await hub?.close();
});

const OK = "hf/org/conv-ok/conv-ok-q8_0";

test("a repo with weights but no GGUF becomes a conversion task, then a catalog entry", async () => {
  const r = await admin.json("POST", "/api/models/register", { repo: "org/conv-ok" });
  expect(r.status).toBe(202);
  expect(r.body).toMatchObject({ id: OK, source: "converted", task: { kind: "convert", model: OK } });
  const done = await taskReaches(r.body.task.id, "done");
  expect(done).toMatchObject({ error: null, bytes: result.length, total: result.length });
  expect(done.events).toBeGreaterThan(0);

  const calls = fs
    .readFileSync(path.join(scripts, "calls.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Json);
  const call = calls.find((c: Json) => c.repo === "org/conv-ok");
  // only what the converter reads: no README, nothing from subfolders
  expect(call).toMatchObject({ outtype: "q8_0", files: ["config.json", "model.safetensors", "tokenizer.json"] });
  expect(fileRequests("org/conv-ok", "README.md")).toBe(0);

  const entry = (await admin.json("GET", "/api/models")).body.find((m: Json) => m.id === OK);
  expect(entry).toMatchObject({ source: "converted", url: null, size: result.length, sha256: sha256(result) });
  const kept = path.join(dataDir, "converted", `${OK}.gguf`);
  expect(fs.readFileSync(kept).equals(result)).toBe(true);
  expect(fs.readdirSync(path.join(dataDir, "convert"))).toEqual([]); // scratch files gone
  expect((await admin.json("POST", "/api/models/register", { repo: "org/conv-ok" })).status).toBe(409);
});

test("the CLI's model add follows the conversion to its end", async () => {
  const out = await cliAgainst(router.url, "model", "add", "org/conv-cli");
  expect(out.out).toContain("converting org/conv-cli into hf/org/conv-cli/conv-cli-q8_0");
  expect(out.out).toContain("registered hf/org/conv-cli/conv-cli-q8_0");
  expect(out.code).toBe(0);
}, 60_000);

test("a node fetches the converted model from the router and answers chat with it", async () => {
  const before = hub.requests.length;
  const r = await admin.json("POST", `/api/models/${enc(OK)}/download`, { nodes: ["node-a"] });
  expect(r.status).toBe(202);
  const t = await taskReaches(r.body.tasks[0].id, "done");
  expect(t).toMatchObject({ node: "node-a", bytes: result.length, error: null });
  expect(hub.requests.length).toBe(before); // not from the hub
  expect(fs.readFileSync(path.join(node.dir, `${OK}.gguf`)).equals(result)).toBe(true);

  const chat = await waitFor(
    async () => {
      const res = await user.chat({ model: OK, messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
      return res.status === 200 ? res : null;
    },
    { what: "the converted model to answer" },
  );
  expect(chat.headers.get("x-router-node")).toBe("node-a");
  expect(((await chat.json()) as Json).model).toBe(OK);
});

test("a running conversion can be cancelled: the script is killed, then a restart finishes it", async () => {
  const r = await admin.json("POST", "/api/models/register", { repo: "org/conv-cancel" });
  const id = r.body.task.id as string;
  const converting = await taskReaches(id, "converting");
  await waitFor(() => fs.existsSync(path.join(scripts, "org_conv-cancel.pid")), { what: "the script to start" });
  expect(converting.detail === null || typeof converting.detail === "string").toBe(true);
  const pid = pidOf("org/conv-cancel");
  const cancelled = await admin.json("POST", `/api/tasks/${id}/cancel`);
  expect(cancelled.status).toBe(200);
  expect(cancelled.body.status).toBe("cancelled");
  await waitFor(() => !running(pid), { what: "the script to be killed" });
  await waitFor(() => !fs.existsSync(path.join(dataDir, "convert", id)), { what: "the scratch dir to go" });

  fs.writeFileSync(path.join(scripts, "release-cancel"), "");
  const restarted = await admin.json("POST", `/api/tasks/${id}/restart`);
  expect(restarted.status).toBe(200);
  expect(restarted.body).toMatchObject({ id, attempt: 2, error: null });
  expect(["queued", "downloading"]).toContain(restarted.body.status);
  await taskReaches(id, "done");
  expect((await admin.json("POST", `/api/tasks/${id}/restart`)).status).toBe(409);
});

test("a failure keeps the script's reason across a router restart; an unfinished conversion resumes after SIGTERM", async () => {
  const failing = await admin.json("POST", "/api/models/register", { repo: "org/conv-fail" });
  const failId = failing.body.task.id as string;
  const failed = await taskReaches(failId, "failed");
  expect(failed.error).toMatch(/convert_hf_to_gguf\.py failed \(exit code 1\)/);
  expect(failed.error).toContain("NotImplementedError: Architecture 'FancyForCausalLM' not supported!");

  const slow = await admin.json("POST", "/api/models/register", { repo: "org/conv-slow" });
  const slowId = slow.body.task.id as string;
  await taskReaches(slowId, "converting");
  await waitFor(() => fs.existsSync(path.join(scripts, "org_conv-slow.pid")), { what: "the slow script to start" });
  const pid = pidOf("org/conv-slow");

  await router.proc.stop("SIGTERM");
  expect(running(pid)).toBe(false); // the router killed its child on the way out
  fs.writeFileSync(path.join(scripts, "release-slow"), "");
  await startTheRouter();

  expect(await task(failId)).toMatchObject({ status: "failed", error: failed.error });
  await taskReaches(slowId, "done");
  // the weights fetched before the restart were kept
  expect(fileRequests("org/conv-slow", "model.safetensors")).toBe(1);
  expect((await admin.json("GET", "/api/models")).body.map((m: Json) => m.id)).toContain(
    "hf/org/conv-slow/conv-slow-q8_0",
  );

  fs.writeFileSync(path.join(scripts, "fixed"), "");
  const restarted = await admin.json("POST", `/api/tasks/${failId}/restart`);
  expect(restarted.status).toBe(200);
  const done = await taskReaches(failId, "done");
  expect(done).toMatchObject({ error: null, attempt: 2 });
  const listed = (await admin.json("GET", "/api/tasks")).body.map((t: Json) => t.id);
  expect(listed).toEqual(expect.arrayContaining([failId, slowId]));
}, 90_000);

test("without LLM_ROUTER_CONVERT_SCRIPT: 422 saying what to install", async () => {
  await router.proc.stop("SIGTERM");
  await startTheRouter(false);
  const r = await admin.json("POST", "/api/models/register", { repo: "org/conv-none" });
  expect(r.status).toBe(422);
  expect(r.body.error.code).toBe("conversion_required");
  expect(r.body.error.message).toMatch(/convert_hf_to_gguf\.py/);
  expect(r.body.error.message).toMatch(/pip install -r llama\.cpp\/requirements\.txt/);
  expect(r.body.error.message).toMatch(/LLM_ROUTER_CONVERT_SCRIPT/);
  expect((await admin.json("POST", "/api/models/register", { repo: "org/conv-none", outtype: "q3" })).status).toBe(400);
}, 60_000);
