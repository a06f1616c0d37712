/**
 * The router next to its peers (direct, nginx, Portkey) in front of the same
 * fake OpenAI upstream, in one run of the shared bench-peers harness.
 *
 *   npm run bench:peers                  # ROUNDS=3 by default, about 4 minutes
 *   PROFILE=1 ROUNDS=1 npm run bench:peers   # also a V8 CPU profile of the router
 *
 * Starts a router (`SERVICES=router`: auth on, history on, embedded store in
 * a temp dir), creates an API key, starts `run.sh` of bench-peers with the
 * router as its extra target, registers the harness's fake upstream as an
 * external runtime (`POST /api/nodes`) as soon as it answers, and copies the
 * tables to bench/results/peers-<stamp>.{md,json}.
 *
 * Env: ROUNDS, LOAD_ARGS (passed to run.sh), BENCH_PEERS (the harness dir,
 * default /work/shared/bench-peers), PROFILE=1 (router runs with --cpu-prof;
 * the .cpuprofile lands in bench/results/), PARALLEL (the runtime's slot count
 * at the router, default 64: the fake upstream has no limit of its own),
 * ROUTER_PROCESSES (LLM_ROUTER_PROCESSES for the router, default 1; its CPU
 * per request then counts the primary and every worker).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createKey, freePort, login, startRouter, tempDir, ROOT } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";

const HARNESS = process.env.BENCH_PEERS ?? "/work/shared/bench-peers";
const RESULTS = path.join(ROOT, "bench/results");
const PROFILE = process.env.PROFILE === "1";
const PARALLEL = Number(process.env.PARALLEL ?? 64);
const PROCESSES = Number(process.env.ROUTER_PROCESSES ?? 1);

async function answers(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(500) });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

async function main() {
  if (!fs.existsSync(path.join(HARNESS, "run.sh"))) throw new Error(`no bench-peers harness at ${HARNESS}`);
  fs.mkdirSync(RESULTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15) + "Z";
  const profDir = tempDir("peers-prof");
  const upstreamPort = await freePort();
  const upstream = `http://127.0.0.1:${upstreamPort}/v1`;

  const router = await startRouter(
    "router",
    { SERVICES: "router", NODEID: "bench-router", LOGLEVEL: "info", LLM_ROUTER_PROCESSES: String(PROCESSES) },
    PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [],
  );
  // every process listening (each logs it), so the load's connections are spread over all
  await waitFor(() => (router.proc.output.match(/LLM Router listening on/g) ?? []).length >= PROCESSES, {
    timeoutMs: 60_000,
    what: `${PROCESSES} router processes listening`,
  });
  const key = await createKey(router.url, { name: "bench-peers" });
  const admin = await login(router.url);
  process.stderr.write(`router ${router.url} (pid ${router.proc.child.pid}), upstream will be ${upstream}\n`);

  const outDir = tempDir("peers-out");
  const harness = spawn("bash", [path.join(HARNESS, "run.sh")], {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      UPSTREAM_PORT: String(upstreamPort),
      EXTRA_TARGET_NAME: "router",
      EXTRA_TARGET_URL: `${router.url}/v1`,
      EXTRA_TARGET_HEADERS: JSON.stringify({ authorization: `Bearer ${key}` }),
      EXTRA_TARGET_PID: String(router.proc.child.pid),
      OUT_DIR: outDir,
      ROUNDS: process.env.ROUNDS ?? "3",
    },
  });
  const exited = new Promise<number | null>((resolve) => harness.once("exit", (code) => resolve(code)));
  let status: number | null;
  try {
    // run.sh starts the upstream first, then nginx and Portkey: register it as soon as it answers
    await waitFor(() => answers(`${upstream}/models`), { timeoutMs: 300_000, intervalMs: 50, what: "fake upstream" });
    const reg = await fetch(`${router.url}/api/nodes`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${admin}` },
      body: JSON.stringify({ base_url: upstream, name: "fake-upstream", parallel: PARALLEL }),
    });
    if (reg.status !== 201) throw new Error(`registering the upstream: ${reg.status} ${await reg.text()}`);
    process.stderr.write(`registered ${upstream} at the router\n`);
    status = await exited;
  } finally {
    if (harness.exitCode === null) harness.kill("SIGTERM");
    await exited;
    await router.proc.stop();
  }
  // kept in the repository: written the way `npm run lint` (prettier) wants them
  const prettier = await import("prettier");
  for (const ext of ["md", "json"]) {
    const src = path.join(outDir, `results.${ext}`);
    if (!fs.existsSync(src)) continue;
    const dest = path.join(RESULTS, `peers-${stamp}.${ext}`);
    const options = { ...(await prettier.resolveConfig(dest)), filepath: dest };
    fs.writeFileSync(dest, await prettier.format(fs.readFileSync(src, "utf8"), options));
  }
  if (PROFILE) process.stderr.write(`router CPU profile: ${profDir}/*.cpuprofile\n`);
  process.stderr.write(`results: bench/results/peers-${stamp}.md (harness exit ${status})\n`);
  if (status !== 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
