/**
 * Models from a Hugging Face Hub stand-in (real GGUF files, Range support,
 * SHA-256 metadata) registered on a router and downloaded by two inference
 * nodes over NATS: progress, resume, rejection of a corrupted file, the new
 * model answering chat, removal, and the CLI driving the same flow.
 */
import fs from "node:fs";
import path from "node:path";
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
import { routerClient, type RouterClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";
import { ggufBytes, startHubStandIn, type HubStandIn } from "../helpers/standins/hub";

let hub: HubStandIn;
let nats: { proc: Proc; url: string };
let router: { proc: Proc; url: string };
const nodes: Record<string, { proc: Proc; dir: string }> = {};
/** With the admin's login. */
let admin: RouterClient;
/** With an API key. */
let user: RouterClient;

interface Task {
  id: string;
  node: string;
  status: string;
  bytes: number;
  total: number | null;
  error: string | null;
}

/** Polls a task to its end, collecting the statuses seen on the way. */
async function finish(id: string): Promise<{ task: Task; seen: string[] }> {
  const seen: string[] = [];
  const task = await waitFor(
    async () => {
      const t = (await admin.json("GET", `/api/tasks/${id}`)).body as Task;
      if (seen[seen.length - 1] !== t.status) seen.push(t.status);
      return ["done", "failed", "cancelled"].includes(t.status) ? t : null;
    },
    { timeoutMs: 30_000, intervalMs: 20, what: `task ${id} to end` },
  );
  return { task, seen };
}

const enc = encodeURIComponent;

beforeAll(async () => {
  hub = await startHubStandIn();
  hub.repos.set(
    "org/tiny-repo",
    new Map([
      ["README.md", Buffer.from("# tiny\n")],
      ["tiny-Q8_0.gguf", ggufBytes("tiny-q8", 1)],
      ["tiny-Q4_K_M.gguf", ggufBytes("tiny-q4", 2)],
    ]),
  );
  hub.repos.set("org/other", new Map([["weights/other.gguf", ggufBytes("other", 3)]]));
  hub.repos.set("org/bad", new Map([["bad-Q4_K_M.gguf", ggufBytes("bad", 4)]]));
  hub.repos.set("org/cli-repo", new Map([["cli.gguf", ggufBytes("cli", 5)]]));
  hub.repos.set(
    "org/weights-only",
    new Map([
      ["model.safetensors", Buffer.alloc(1024, 1)],
      ["config.json", Buffer.from("{}")],
    ]),
  );
  hub.corrupt.add("org/bad/bad-Q4_K_M.gguf");

  nats = await startNats();
  const cluster = {
    TRANSPORTER: nats.url,
    HEARTBEAT_INTERVAL: "1",
    HEARTBEAT_TIMEOUT: "3",
    LLM_NODE_HEARTBEAT_SECS: "2",
  };
  for (const id of ["node-a", "node-b"]) {
    const dir = tempDir(`models-${id}`);
    writeModel(dir, "base");
    nodes[id] = {
      dir,
      proc: startCli(id, {
        ...cluster,
        SERVICES: "inference",
        NODEID: id,
        LLM_NODE_MODELS_DIR: dir,
        HF_BASE_URL: hub.url,
      }),
    };
  }
  router = await startRouter("router", { ...cluster, SERVICES: "router", NODEID: "router-1", HF_BASE_URL: hub.url });
  admin = routerClient(router.url, { token: await login(router.url) });
  user = routerClient(router.url, { key: await createKey(router.url) });
  await waitFor(async () => (await user.models()).find((m) => m.id === "base")?.nodes.length === 2, {
    timeoutMs: 60_000,
    what: "both nodes online",
  });
}, 90_000);

afterAll(async () => {
  await Promise.all([router?.proc.stop(), ...Object.values(nodes).map((n) => n.proc.stop())]);
  await nats?.proc.stop();
  await hub?.close();
});

const Q4 = "hf/org/tiny-repo/tiny-Q4_K_M";

describe("registration", () => {
  test("org/repo picks the Q4_K_M GGUF and records its size and SHA-256 from the hub", async () => {
    const r = await admin.json("POST", "/api/models/register", { repo: "org/tiny-repo" });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ id: Q4, repo: "org/tiny-repo", file: "tiny-Q4_K_M.gguf", nodes: [] });
    const bytes = hub.repos.get("org/tiny-repo")!.get("tiny-Q4_K_M.gguf")!;
    expect(r.body.size).toBe(bytes.length);
    expect(r.body.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test("weights without GGUF and no LLM_ROUTER_CONVERT_SCRIPT: 422 saying what to install", async () => {
    const r = await admin.json("POST", "/api/models/register", { repo: "org/weights-only" });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/convert_hf_to_gguf\.py.*pip install -r .*LLM_ROUTER_CONVERT_SCRIPT/);
  });

  test("a hub URL naming a file takes that file", async () => {
    const r = await admin.json("POST", "/api/models/register", {
      repo: `${hub.url}/org/other/blob/main/weights/other.gguf`,
    });
    expect(r.status).toBe(201);
    expect(r.body.id).toBe("hf/org/other/weights/other");
  });

  test.each([
    [{ repo: "org/tiny-repo" }, 409, "model_exists"],
    [{ repo: "org/missing" }, 404, "hub_repo_not_found"],
    [{ repo: "org/weights-only" }, 422, "conversion_required"],
    [{ repo: "../../etc" }, 400, undefined],
    [{ repo: "org/tiny-repo", file: "../../../etc/passwd" }, 400, undefined],
    [{ repo: "org/tiny-repo", file: "/abs/x.gguf" }, 400, undefined],
    [{ repo: "org/tiny-repo", file: "nope.gguf" }, 404, "file_not_found"],
  ])("%j is refused with %i", async (body, status, code) => {
    const r = await admin.json("POST", "/api/models/register", body);
    expect(r.status).toBe(status);
    if (code) expect(r.body.error.code).toBe(code);
  });
});

describe("distribution", () => {
  test("to one node: progress is reported, the node loads it, and it answers chat through the router", async () => {
    const r = await admin.json("POST", `/api/models/${enc(Q4)}/download`, { nodes: ["node-a"] });
    expect(r.status).toBe(202);
    expect(r.body.tasks).toHaveLength(1);
    const { task, seen } = await finish(r.body.tasks[0].id);
    expect(task).toMatchObject({ status: "done", node: "node-a", error: null });
    expect(task.bytes).toBe(task.total);
    expect(seen).toContain("done");
    // the node reported the start, loading and the end at least
    expect((task as Task & { events: number }).events).toBeGreaterThanOrEqual(3);
    expect(fs.existsSync(path.join(nodes["node-a"].dir, "hf/org/tiny-repo/tiny-Q4_K_M.gguf"))).toBe(true);

    await waitFor(async () => (await user.models()).find((m) => m.id === Q4)?.nodes.join() === "node-a", {
      what: "the model on /v1/models",
    });
    const listed = await admin.json("GET", "/api/models");
    expect(listed.body.find((m: { id: string }) => m.id === Q4).nodes).toEqual(["node-a"]);
    const chat = await user.chat({ model: Q4, messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    expect(chat.status).toBe(200);
    expect(chat.headers.get("x-router-node")).toBe("node-a");
  });

  test("to all nodes: the one without it downloads it, the one with it says so", async () => {
    const r = await admin.json("POST", `/api/models/${enc(Q4)}/download`, { all: true });
    const results = await Promise.all((r.body.tasks as Task[]).map((t) => finish(t.id)));
    const byNode = Object.fromEntries(results.map(({ task }) => [task.node, task]));
    expect(byNode["node-b"].status).toBe("done");
    expect(byNode["node-a"]).toMatchObject({ status: "failed", error: expect.stringContaining("already") });
    await waitFor(async () => (await user.models()).find((m) => m.id === Q4)?.nodes.length === 2, {
      what: "the model on both nodes",
    });
  });

  test("an interrupted download resumes with a Range request", async () => {
    const file = hub.repos.get("org/other")!.get("weights/other.gguf")!;
    hub.cutNextDownloadAfter = Math.floor(file.length / 2);
    const r = await admin.json("POST", `/api/models/${enc("hf/org/other/weights/other")}/download`, {
      nodes: ["node-b"],
    });
    const { task } = await finish(r.body.tasks[0].id);
    expect(task.status).toBe("done");
    expect(hub.requests.some((q) => q.path.includes("other.gguf") && q.range?.startsWith("bytes="))).toBe(true);
    expect(fs.readFileSync(path.join(nodes["node-b"].dir, "hf/org/other/weights/other.gguf")).equals(file)).toBe(true);
  });

  test("a corrupted file is rejected: a failed task with the reason, no file left", async () => {
    const reg = await admin.json("POST", "/api/models/register", { repo: "org/bad" });
    expect(reg.status).toBe(201);
    const r = await admin.json("POST", `/api/models/${enc(reg.body.id)}/download`, { nodes: ["node-a"] });
    const { task } = await finish(r.body.tasks[0].id);
    expect(task.status).toBe("failed");
    expect(task.error).toMatch(/sha-?256|checksum/i);
    const dir = path.join(nodes["node-a"].dir, "hf/org/bad");
    expect(fs.existsSync(dir) ? fs.readdirSync(dir) : []).toEqual([]);
    expect((await user.models()).some((m) => m.id === reg.body.id)).toBe(false);

    // once the hub serves it right, the same task restarted succeeds
    expect((await admin.json("POST", `/api/tasks/${task.id}/restart`)).status).toBe(200);
    expect((await admin.json("POST", `/api/tasks/${task.id}/restart`)).status).toBe(409);
    await finish(task.id); // the corrupt file again: restarted tasks can fail again
    hub.corrupt.delete("org/bad/bad-Q4_K_M.gguf");
    const restarted = await admin.json("POST", `/api/tasks/${task.id}/restart`);
    expect(restarted.body).toMatchObject({ id: task.id, attempt: 3, error: null });
    const again = await finish(task.id);
    expect(again.task).toMatchObject({ status: "done", node: "node-a", error: null });
    await waitFor(async () => (await user.models()).some((m) => m.id === reg.body.id), { what: "the restarted model" });
  });

  test("a running download can be cancelled: nothing is left behind", async () => {
    hub.bytesPerSecond = 50_000; // ~10 s for this file
    try {
      const r = await admin.json("POST", `/api/models/${enc("hf/org/other/weights/other")}/download`, {
        nodes: ["node-a"],
      });
      const id = r.body.tasks[0].id as string;
      await waitFor(async () => ((await admin.json("GET", `/api/tasks/${id}`)).body as Task).bytes > 0, {
        what: "the download to start",
      });
      const cancelled = await admin.json("POST", `/api/tasks/${id}/cancel`);
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe("cancelled");
      expect((await admin.json("POST", `/api/tasks/${id}/cancel`)).status).toBe(409);
      const dir = path.join(nodes["node-a"].dir, "hf/org/other/weights");
      await waitFor(() => !fs.existsSync(dir) || fs.readdirSync(dir).length === 0, { what: "the .part to be removed" });
    } finally {
      hub.bytesPerSecond = null;
    }
  });

  test("bad targets are refused", async () => {
    expect((await admin.json("POST", `/api/models/${enc(Q4)}/download`, {})).status).toBe(400);
    expect((await admin.json("POST", `/api/models/${enc(Q4)}/download`, { nodes: ["ghost"] })).status).toBe(404);
    expect((await admin.json("POST", `/api/models/${enc("hf/none/x")}/download`, { all: true })).status).toBe(404);
    expect((await admin.json("GET", "/api/tasks/task-nope")).status).toBe(404);
  });

  test("removing a model from a node unloads and deletes it", async () => {
    const r = await admin.json("DELETE", `/api/nodes/node-b/models/${enc(Q4)}`);
    expect(r.status).toBe(200);
    expect(fs.existsSync(path.join(nodes["node-b"].dir, "hf/org/tiny-repo/tiny-Q4_K_M.gguf"))).toBe(false);
    await waitFor(async () => (await user.models()).find((m) => m.id === Q4)?.nodes.join() === "node-a", {
      what: "the model to leave node-b",
    });
    expect((await admin.json("DELETE", `/api/nodes/node-b/models/${enc(Q4)}`)).status).toBe(404);
  });

  test("the task list holds every task, newest first", async () => {
    const r = await admin.json("GET", "/api/tasks");
    expect(r.status).toBe(200);
    expect(r.body.length).toBeGreaterThanOrEqual(5);
    expect(r.body[0].created_at >= r.body[r.body.length - 1].created_at).toBe(true);
  });
});

describe("the CLI", () => {
  const cli = (...args: string[]) => cliAgainst(router.url, ...args);

  test("model add, download with progress, list, rm; nodes", async () => {
    const added = await cli("model", "add", "org/cli-repo");
    expect(added).toMatchObject({ code: 0, out: expect.stringContaining("registered hf/org/cli-repo/cli") });
    const dl = await cli("model", "download", "hf/org/cli-repo/cli", "--node", "node-b");
    expect(dl.code).toBe(0);
    expect(dl.out).toContain("node-b: done");
    await waitFor(async () => (await user.models()).some((m) => m.id === "hf/org/cli-repo/cli"), {
      what: "the CLI's model",
    });
    const list = await cli("model", "list");
    expect(list.out).toMatch(/hf\/org\/cli-repo\/cli\s.*on: node-b/);
    const ns = await cli("nodes");
    expect(ns.out).toMatch(/node-a\tonline/);
    expect(ns.out).toMatch(/node-b\tonline/);
    const rm = await cli("model", "rm", "hf/org/cli-repo/cli");
    expect(rm.code).toBe(0);
    expect((await cli("model", "download", "hf/org/cli-repo/cli", "--all")).code).not.toBe(0);
  }, 60_000);
});
