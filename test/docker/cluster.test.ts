/**
 * docker/compose.cluster.yml for real: the router, NATS, PostgreSQL and two CPU
 * inference nodes as containers on a Docker engine, from the images this
 * repository builds (on base images made without a registry by
 * docker/base/build.sh). A chat goes through the router's published port with
 * the official `openai` client; the node that answered is stopped and the next
 * chat is answered by the other one.
 *
 * Not part of `npm test`: `npm run test:docker` (test/docker/run.sh) starts
 * dockerd if needed, builds the images, then runs this file.
 */
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { DEMO_MODEL_ID } from "../../lib/inference/demo-model";
import { routerClient, type RouterClient } from "../helpers/client";
import { ADMIN_PASSWORD, createKey, freePort, login } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const ROOT = path.join(__dirname, "../..");
const DOCKER = path.join(ROOT, "docker");
const PROJECT = `llmr-test-${process.pid}`;
const BASE = {
  NODE_IMAGE: process.env.NODE_IMAGE ?? "llm-router/node-base:20-bookworm",
  NATS_IMAGE: process.env.NATS_IMAGE ?? "llm-router/nats:bookworm",
  POSTGRES_IMAGE: process.env.POSTGRES_IMAGE ?? "llm-router/postgres:15-bookworm",
};

jest.setTimeout(15 * 60_000);

/** Progress on stderr as it happens (jest shows a file's console output only at its end). */
const step = (what: string) => process.stderr.write(`[test:docker ${new Date().toISOString()}] ${what}\n`);

/** `docker compose` (the plugin) where there is one, else Debian's docker-compose 1.29. */
function composeCommand(): { cmd: string; args: string[]; file: string } {
  const source = path.join(DOCKER, "compose.cluster.yml");
  if (spawnSync("docker", ["compose", "version"]).status === 0)
    return { cmd: "docker", args: ["compose"], file: source };
  // 1.29 knows no top-level `name` (the project is named by -p below); the copy sits beside
  // the original so that its relative paths (./nats.conf, the build context ..) stay the same
  const copy = path.join(DOCKER, `.compose.cluster.${process.pid}.yml`);
  fs.writeFileSync(copy, fs.readFileSync(source, "utf8").replace(/^name:.*$/m, ""));
  return { cmd: "docker-compose", args: [], file: copy };
}

describe("compose.cluster.yml on a Docker engine", () => {
  const compose = composeCommand();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmr-docker-"));
  const envFile = path.join(dir, ".env");
  let router: RouterClient;
  let key: string;

  const run = (...args: string[]) => {
    const r = spawnSync(
      compose.cmd,
      [...compose.args, "-p", PROJECT, "--env-file", envFile, "-f", compose.file, ...args],
      {
        encoding: "utf8",
        cwd: ROOT,
      },
    );
    if (r.status !== 0) throw new Error(`${compose.cmd} ${args.join(" ")}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  beforeAll(async () => {
    const info = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8" });
    if (info.status !== 0) throw new Error(`no Docker engine answers (start dockerd): ${info.stderr}`);
    const port = await freePort();
    // hex, and a digit first for NATS: the password nats.conf once could not take (docker/nats-start.sh)
    const secret = () => crypto.randomBytes(12).toString("hex");
    fs.writeFileSync(
      envFile,
      Object.entries({
        ...BASE,
        NATS_PASSWORD: `2e${secret()}`,
        POSTGRES_PASSWORD: secret(),
        LLM_ROUTER_ADMIN_PASSWORD: ADMIN_PASSWORD,
        LLM_ROUTER_PUBLISH: `127.0.0.1:${port}`,
        // the host's own NATS may hold 4222
        NATS_PORT: String(await freePort()),
        LLM_NODE_PARALLEL: "1",
        LLM_NODE_THREADS: "1",
      })
        .map(([k, v]) => `${k}=${v}`)
        .join("\n"),
    );
    // the images are built by test/docker/run.sh: compose starts what is there
    step(`${compose.cmd} up -d (project ${PROJECT}, API on port ${port})`);
    run("up", "-d", "--no-build");
    step("waiting for the router's readiness");
    router = routerClient(`http://127.0.0.1:${port}`);
    // a connection docker-proxy takes before the router listens is never answered: each try has its own timeout
    const ready = () => router.get("/health?ready=1", { signal: AbortSignal.timeout(3000) });
    await waitFor(async () => (await ready()).status === 200, {
      timeoutMs: 5 * 60_000,
      intervalMs: 1000,
      what: "the router container's readiness",
    });
    step("creating an API key");
    key = await createKey(router.url);
    router = router.as({ key });
  });

  afterAll(() => {
    try {
      if (router === undefined) process.stdout.write(run("logs", "--no-color", "--tail", "50"));
      step("down -v");
      run("down", "-v", "--remove-orphans", "--timeout", "20");
    } finally {
      if (compose.file.includes(`.${process.pid}.`)) fs.rmSync(compose.file, { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a chat is answered by a node container, and by the other one once that container is stopped", async () => {
    // each node writes the demo model into its empty /models volume and loads it
    await waitFor(
      async () => {
        const model = (await router.models()).find((m) => m.id === DEMO_MODEL_ID);
        return model !== undefined && model.nodes.length === 2;
      },
      { timeoutMs: 5 * 60_000, intervalMs: 1000, what: `${DEMO_MODEL_ID} on both node containers` },
    );
    const openai = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: key, maxRetries: 0 });
    const ask = async () => {
      const { data, response } = await openai.chat.completions
        .create({ model: DEMO_MODEL_ID, messages: [{ role: "user", content: "Hello" }], max_tokens: 8 })
        .withResponse();
      expect(data.choices[0].message.role).toBe("assistant");
      expect(data.usage?.completion_tokens).toBeGreaterThan(0);
      return response.headers.get("x-router-node");
    };

    step("both nodes serve the demo model: first chat");
    const first = await ask();
    step(`answered by ${first}: stopping its container`);
    expect(["node-1", "node-2"]).toContain(first);
    run("stop", "--timeout", "30", first as string);

    const other = first === "node-1" ? "node-2" : "node-1";
    step(`stopped; chats to ${other}`);
    for (let i = 0; i < 3; i++) expect(await ask()).toBe(other);
    // the stopped node said goodbye over NATS: the router no longer lists it
    await waitFor(async () => (await router.models()).find((m) => m.id === DEMO_MODEL_ID)?.nodes.join() === other, {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: `${DEMO_MODEL_ID} on ${other} only`,
    });

    // every chat is in the history, in the compose PostgreSQL (through NATS JetStream), with its node
    const admin = routerClient(router.url, { token: await login(router.url) });
    const served = await waitFor(
      async () => {
        const page = await admin.json<{ records: Array<{ node_id: string }> }>(
          "GET",
          "/api/dashboard/request-responses?per_page=10",
        );
        return page.body.records.length === 4 ? page.body.records.map((r) => r.node_id).sort() : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: "the four chats in the history" },
    );
    expect(served).toEqual([first, other, other, other].sort());
  });
});
