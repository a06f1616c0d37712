/**
 * The audit log of admin actions on a real router (one process with an
 * instant-engine node): admin actions, a refusal and a viewer's 403 are
 * recorded in order once answered, with the login, the address and the
 * status, and no password or key in the log or its file; `llm-router audit
 * verify` passes, and fails naming the entry after it was edited on disk.
 */
import fs from "node:fs";
import path from "node:path";
import { routerClient, type RouterClient } from "../helpers/client";
import { cliAgainst, login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const models = tempDir("audit-models");
fs.writeFileSync(path.join(models, "base.gguf"), "instant: never loaded");
const dataDir = tempDir("audit-data");
const auditFile = path.join(dataDir, "audit.db");

const USER_PASSWORD = "alice-very-secret-pw";
let router: { proc: Proc; url: string };
let admin: RouterClient;

interface Entry {
  seq: number;
  ts: string;
  actor: string | null;
  actor_role: string | null;
  ip: string;
  action: string;
  target: string | null;
  status: number;
  changes: unknown;
  prev: string;
  hash: string;
}

async function start() {
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_ROUTER_DATA_DIR: dataDir,
  });
  admin = routerClient(router.url, { token: await login(router.url) });
}

beforeAll(start, 60_000);

afterAll(async () => {
  await router?.proc.stop();
});

const entries = async (query = "") => (await admin.json("GET", `/api/audit${query}`)).body.entries as Entry[];

describe("audit log", () => {
  let keyPlaintext: string;
  let nodeId: string;

  test("admin actions are recorded in order once answered; secrets never are", async () => {
    const node = await waitFor(async () => (await admin.nodes()).find((n) => n.models.includes("base")), {
      timeoutMs: 30_000,
      what: "the node in the table",
    });
    nodeId = node.id;

    const user = await admin.answer("POST", "/api/users", { username: "alice", password: USER_PASSWORD });
    expect(user.status).toBe(201);
    const key = await admin.answer("POST", "/api/api-keys", { name: "ci-key" });
    expect(key.status).toBe(201);
    keyPlaintext = key.body.key;
    expect(keyPlaintext).toMatch(/^sk-/);
    expect((await admin.answer("POST", `/api/nodes/${encodeURIComponent(nodeId)}/drain`)).status).toBe(200);
    expect((await admin.answer("POST", "/api/aliases", { alias: "fast", model: "base" })).status).toBe(201);
    expect((await admin.answer("POST", "/api/aliases", { alias: "bad alias", model: "base" })).status).toBe(422);
    // a viewer's attempt: refused by the gate, recorded with who it was
    const viewer = admin.as({ token: await login(router.url, "alice", USER_PASSWORD) });
    expect((await viewer.answer("DELETE", "/api/aliases/fast")).status).toBe(403);
    // not recorded: no login (401), reads, logins
    expect((await admin.as({}).answer("POST", "/api/users", { username: "x", password: "y" })).status).toBe(401);
    expect((await admin.answer("GET", "/api/users")).status).toBe(200);

    const log = await waitFor(async () => {
      const e = await entries();
      return e.length >= 6 ? e : null;
    });
    // newest first
    expect(log.map((e) => e.seq)).toEqual([6, 5, 4, 3, 2, 1]);
    const oldestFirst = [...log].reverse();
    expect(oldestFirst.map((e) => ({ actor: e.actor, action: e.action, target: e.target, status: e.status }))).toEqual([
      { actor: "admin", action: "POST /api/users", target: null, status: 201 },
      { actor: "admin", action: "POST /api/api-keys", target: null, status: 201 },
      { actor: "admin", action: "POST /api/nodes/:id/drain", target: nodeId, status: 200 },
      { actor: "admin", action: "POST /api/aliases", target: null, status: 201 },
      { actor: "admin", action: "POST /api/aliases", target: null, status: 422 },
      { actor: "alice", action: "DELETE /api/aliases/:alias", target: "fast", status: 403 },
    ]);
    for (const e of log) expect(e.ip).toMatch(/127\.0\.0\.1/);
    expect(oldestFirst[0]).toMatchObject({
      actor_role: "admin",
      changes: { username: "alice", password: "[redacted]" },
    });
    expect(oldestFirst[1].changes).toEqual({ name: "ci-key" });
    expect(oldestFirst[3].changes).toEqual({ alias: "fast", model: "base" });
    expect(oldestFirst[5].actor_role).toBe("viewer");

    for (const text of [JSON.stringify(log), fs.readFileSync(auditFile, "utf8")]) {
      expect(text).not.toContain(USER_PASSWORD);
      expect(text).not.toContain(keyPlaintext);
      expect(text).not.toMatch(/Bearer|authorization/i);
    }

    // filters and paging
    expect((await entries("?limit=2")).map((e) => e.seq)).toEqual([6, 5]);
    expect((await entries("?before_seq=3")).map((e) => e.seq)).toEqual([2, 1]);
    expect((await entries("?actor=alice")).map((e) => e.seq)).toEqual([6]);
    expect((await entries("?action=aliases")).map((e) => e.seq)).toEqual([6, 5, 4]);
    expect((await admin.answer("GET", "/api/audit?limit=501")).status).toBe(400);
    expect((await admin.json("GET", "/api/audit/verify")).body).toEqual({ ok: true, count: 6, head: log[0].hash });
  }, 60_000);

  test("the CLI lists and verifies", async () => {
    const verified = await cliAgainst(router.url, "audit", "verify");
    expect(verified).toEqual({
      code: 0,
      out: expect.stringMatching(/^audit log intact: 6 entries, head [0-9a-f]{64}\n$/),
    });
    const listed = await cliAgainst(router.url, "audit", "list", "--limit", "2");
    expect(listed.code).toBe(0);
    expect(
      listed.out
        .trim()
        .split("\n")
        .map((l) => l.split("\t")[0]),
    ).toEqual(["6", "5"]);
    expect(listed.out).toMatch(/\talice\t.*\tDELETE \/api\/aliases\/:alias fast\t403/);
  }, 60_000);

  test("an entry edited on disk: verify fails naming its seq", async () => {
    await router.proc.stop();
    // NeDB: one JSON document per line, a later line with the same _id replacing an earlier one
    const lines = fs.readFileSync(auditFile, "utf8").split("\n");
    let edited = 0;
    const out = lines.map((line) => {
      if (!line.trim()) return line;
      const doc = JSON.parse(line) as { _id: string; seq: number; changes_json: string };
      if (doc.seq !== 4) return line;
      edited++;
      return JSON.stringify({ ...doc, changes_json: doc.changes_json.replace('"base"', '"evil"') });
    });
    expect(edited).toBeGreaterThan(0);
    fs.writeFileSync(auditFile, out.join("\n"));

    await start();
    expect((await entries("?limit=500")).find((e) => e.seq === 4)?.changes).toEqual({ alias: "fast", model: "evil" });
    const verified = await cliAgainst(router.url, "audit", "verify");
    expect(verified.code).toBe(1);
    expect(verified.out).toMatch(/audit log broken at seq 4: hash mismatch/);
  }, 90_000);
});
