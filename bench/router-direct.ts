/**
 * The short loop of the peers bench: the router against the harness's fake
 * upstream directly, side by side, with the harness's own load generator
 * (no nginx, no Portkey), for checking a change to the hot path in about a
 * minute. `npm run bench:peers` stays the bench of record.
 *
 *   npm run bench:router-direct
 *   ROUNDS=3 LOAD_ARGS="--duration 5" npm run bench:router-direct
 *   ROUTER_PROCESSES=2 npm run bench:router-direct    # also a router on 2 processes, side by side
 *
 * Env: ROUNDS (2), LOAD_ARGS (more load.mjs options; default a 5 s window and
 * 1000 sequential requests), BENCH_PEERS (the harness dir), PARALLEL (the
 * runtime's slot count at the router, default 64), PROFILE=1 (router runs
 * with --cpu-prof), ROUTER_PROCESSES (N > 1: a second router target,
 * `routerNp`, with LLM_ROUTER_PROCESSES=N), ROUTER_ENV (space-separated NAME=VALUE
 * pairs for the router, e.g. "LLM_ROUTER_HISTORY_ENABLED=false"), KEY_FIELDS (JSON: the
 * bench key's limits, e.g. '{"rate_limit_tpm":1000000000}'), BASELINE (the root of
 * another checkout of the router, with its node_modules: a second target,
 * `baseline`, started from there, measured in the same rounds as this one:
 * a change against the commit before it, side by side on a noisy machine;
 * BASELINE_FIRST=1 measures it before this one in each round; BASELINE_NODE_ARGS: node's
 * options for the baseline alone, default ROUTER_NODE_ARGS: with BASELINE=. a flag side by side).
 *
 *   git worktree add /tmp/base HEAD~1 && ln -s $PWD/node_modules /tmp/base/
 *   BASELINE=/tmp/base ROUNDS=4 LOAD_ARGS="--duration 5 --phases tput" npm run bench:router-direct
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Proc, baseEnv, createKey, freePort, login, startRouter, tempDir } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";

const HARNESS = process.env.BENCH_PEERS ?? "/work/shared/bench-peers";
const PROFILE = process.env.PROFILE === "1";
const PARALLEL = Number(process.env.PARALLEL ?? 64);

interface Target {
  name: string;
  router: { proc: Proc; url: string };
  processes: number;
}

/** Waits for every process of the router to listen, makes a key and registers the upstream; returns the key. */
async function prepare(t: Target, upstream: string): Promise<string> {
  // each process logs it; then the load's connections are spread over all of them
  await waitFor(() => (t.router.proc.output.match(/LLM Router listening on/g) ?? []).length >= t.processes, {
    timeoutMs: 60_000,
    what: `${t.processes} processes of ${t.name} listening`,
  });
  // KEY_FIELDS: the bench key's limits, e.g. '{"rate_limit_tpm":1000000000}' (what admitting against them costs)
  const key = await createKey(t.router.url, { name: "bench", ...JSON.parse(process.env.KEY_FIELDS ?? "{}") });
  const admin = await login(t.router.url);
  const reg = await fetch(`${t.router.url}/api/nodes`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${admin}` },
    body: JSON.stringify({ base_url: upstream, name: "fake-upstream", parallel: PARALLEL }),
  });
  if (reg.status !== 201) throw new Error(`registering the upstream at ${t.name}: ${reg.status} ${await reg.text()}`);
  return key;
}

async function main() {
  const port = await freePort();
  const upstream = new Proc(
    "fake-upstream",
    spawn(process.execPath, [path.join(HARNESS, "fake-upstream.mjs")], {
      env: { ...process.env, PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const profDir = tempDir("router-direct-prof");
  const env: Record<string, string> = { SERVICES: "router", NODEID: "bench-router", LOGLEVEL: "info" };
  // e.g. ROUTER_ENV="LLM_ROUTER_HISTORY_ENABLED=false" to see what a part costs
  for (const pair of (process.env.ROUTER_ENV ?? "").split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf("=");
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const nodeArgs = [
    ...(PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []),
    ...(process.env.ROUTER_NODE_ARGS ?? "").split(/\s+/).filter(Boolean),
  ];
  const targets: Target[] = [{ name: "router", router: await startRouter("router", env, nodeArgs), processes: 1 }];
  // ROUTER_PROCESSES=N: a second router on N processes, side by side with the first in the same rounds
  const processes = Number(process.env.ROUTER_PROCESSES ?? 1);
  if (processes > 1) {
    const name = `router${processes}p`;
    const many = { ...env, NODEID: `bench-${name}`, LLM_ROUTER_PROCESSES: String(processes) };
    targets.push({ name, router: await startRouter(name, many, nodeArgs), processes });
  }
  // BASELINE: the router of another checkout, in the same rounds
  if (process.env.BASELINE) {
    const root = path.resolve(process.env.BASELINE);
    // BASELINE_NODE_ARGS: node's options for the baseline alone (e.g. BASELINE=. to measure a flag side by side)
    const baseArgs = process.env.BASELINE_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? nodeArgs;
    const child = spawn(process.execPath, [...baseArgs, "--import", "tsx", path.join(root, "bin/main.ts"), "start"], {
      cwd: root,
      env: baseEnv({ ...env, NODEID: "bench-baseline" }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const proc = new Proc("baseline", child);
    const url = (await proc.waitForOutput(/LLM Router listening on (http:\/\/\S+)/))[1];
    // measured after this checkout's router, or before it with BASELINE_FIRST=1 (the order can matter: run both)
    const baseline = { name: "baseline", router: { proc, url }, processes: 1 };
    if (process.env.BASELINE_FIRST === "1") targets.unshift(baseline);
    else targets.push(baseline);
  }
  // the floor for any Node router, in the same rounds: the harness's bare pass-through proxy
  const proxyPort = await freePort();
  const proxy = new Proc(
    "node-proxy",
    spawn(process.execPath, [path.join(HARNESS, "node-proxy.mjs")], {
      env: { ...process.env, PORT: String(proxyPort), UPSTREAM: `http://127.0.0.1:${port}` },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  try {
    await waitFor(() => /node-proxy on/.test(proxy.output), { timeoutMs: 10_000, what: "node-proxy listening" });
    const args = [path.join(HARNESS, "load.mjs"), "--target", `direct=http://127.0.0.1:${port}/v1`];
    args.push("--target", `node-proxy=http://127.0.0.1:${proxyPort}/v1`, "--pid", `node-proxy=${proxy.child.pid}`);
    for (const t of targets) {
      const key = await prepare(t, `http://127.0.0.1:${port}/v1`);
      args.push("--target", `${t.name}=${t.router.url}/v1`);
      args.push("--header", `${t.name}=${JSON.stringify({ authorization: `Bearer ${key}` })}`);
      args.push("--pid", `${t.name}=${t.router.proc.child.pid}`);
    }
    args.push("--rounds", process.env.ROUNDS ?? "2", "--out", path.join(profDir, "results.json"));
    args.push(...(process.env.LOAD_ARGS ?? "--duration 5 --seq 1000").split(/\s+/).filter(Boolean));
    const load = spawn(process.execPath, args, { stdio: "inherit" });
    const code = await new Promise<number | null>((resolve) => load.once("exit", resolve));
    if (code !== 0) process.exitCode = 1;
  } finally {
    for (const t of targets) await t.router.proc.stop();
    await proxy.stop();
    await upstream.stop();
    // "served N requests on M connections": M far below N means the router keeps its connections alive
    process.stderr.write(upstream.output.trim().split("\n").slice(-1)[0] + "\n");
  }
  if (PROFILE) {
    const prof = fs.readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
    process.stderr.write(`router CPU profile: ${prof.map((f) => path.join(profDir, f)).join(", ")}\n`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
