/**
 * What recording request history costs the router at a fixed request rate.
 *
 *   npm run bench:history        # RATE=400 SECONDS=5 ROUNDS=6 FULL=1 FULL_SECONDS=15
 *
 * Starts embedded routers (all services in one process, no transporter, the
 * simulated instant engine, auth off) that differ only in history:
 *   off   LLM_ROUTER_HISTORY_ENABLED=false
 *   on    recording, empty store to start with
 *   full  recording, the store already at its cap (100,000 records written to
 *         its NeDB file before start), so it trims as it records
 * and drives each with the same open-loop rate of non-streamed chat
 * completions. `off` and `on` take turns for ROUNDS rounds of SECONDS each
 * (after a warm-up: 5 s the first time, 2 s after; the order flips every
 * round), because the machine is shared and noisy: the summary gives the
 * median over rounds, the range, and the median of the per-round on/off
 * ratios (paired). `full` runs FULL times (0 skips it) for FULL_SECONDS, long
 * enough to reach a trim (one every 5 % of the cap). Per run: throughput
 * achieved, latency p50/p99/max, failures, the router's CPU time per request
 * (from /proc) and how many cap trims its log shows. The load average is
 * printed too: other work on the machine shows there.
 */
import { execSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { login, tempDir, writeModel, type Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { percentile, post } from "./lib";
import { writeNedbFile } from "./history-data";
import { startTracked } from "./history-query";

const RATE = Number(process.env.RATE ?? 400);
const SECONDS = Number(process.env.SECONDS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const FULL = Number(process.env.FULL ?? 1);
const FULL_SECONDS = Number(process.env.FULL_SECONDS ?? 15);
const CAP = 100_000;
const MODEL = "bench-instant";
const TICKS = (() => {
  try {
    return Number(execSync("getconf CLK_TCK", { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** A chat request of a realistic size (about 400 bytes of JSON). */
const BODY = {
  model: MODEL,
  messages: [
    { role: "system", content: "You are a helpful assistant. Answer briefly." },
    {
      role: "user",
      content:
        "Summarise the following in one sentence: the quarterly report shows revenue up eight percent, costs flat, " +
        "and a new region opening next spring; the team asks whether hiring should start now or after the launch.",
    },
  ],
  max_tokens: 16,
  temperature: 0.7,
};

interface Run {
  sent: number;
  failed: number;
  throughput: number;
  p50: number;
  p99: number;
  max: number;
  cpuUsPerReq: number;
  trims: number;
}

/** The process's user + system CPU time, in ms. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS;
}

function rssMb(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The median, the mean of the middle two for an even count. */
function middle(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const trimsIn = (p: Proc) => (p.output.match(/history: purged/g) ?? []).length;

/** Open loop: `rate` requests per second for `seconds`, whatever the answers do. */
async function load(url: string, rate: number, seconds: number) {
  const latencies: number[] = [];
  let failed = 0;
  let firstError = "";
  const inflight: Promise<void>[] = [];
  const start = Date.now();
  let sent = 0;
  while (Date.now() - start < seconds * 1000) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (sent < due) {
      sent++;
      inflight.push(
        post(`${url}/v1/chat/completions`, BODY).then(
          (t) => void latencies.push(t.total / 1000),
          (err: Error) => {
            failed++;
            firstError ||= err.message;
          },
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inflight);
  const elapsed = (Date.now() - start) / 1000;
  if (firstError) process.stderr.write(`  ${failed} failed, first: ${firstError}\n`);
  return { sent, failed, latencies, elapsed };
}

async function measure(r: { proc: Proc; url: string }, warmS: number, seconds: number): Promise<Run> {
  const pid = r.proc.child.pid!;
  await load(r.url, RATE, warmS);
  const cpu0 = cpuMs(pid);
  const trims0 = trimsIn(r.proc);
  const l = await load(r.url, RATE, seconds);
  // the last records reach the store up to 0.5 s later: count that work too
  await new Promise((res) => setTimeout(res, 600));
  const cpu = cpuMs(pid) - cpu0;
  return {
    sent: l.sent,
    failed: l.failed,
    throughput: l.latencies.length / l.elapsed,
    p50: percentile(l.latencies, 50),
    p99: percentile(l.latencies, 99),
    max: Math.max(...l.latencies),
    cpuUsPerReq: (cpu * 1000) / l.sent,
    trims: trimsIn(r.proc) - trims0,
  };
}

async function main() {
  const load0 = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
  const dir = tempDir("history-bench");
  const models = path.join(dir, "models");
  writeModel(models, MODEL);
  const common = {
    LOGLEVEL: "info",
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_NODE_PARALLEL: "64",
    LLM_ROUTER_AUTH_DISABLED: "true",
    LLM_ROUTER_HISTORY_MAX_RECORDS: String(CAP),
  };
  const variants: Array<{ name: string; env: Record<string, string> }> = [
    { name: "off", env: { LLM_ROUTER_HISTORY_ENABLED: "false", LLM_ROUTER_DATA_DIR: path.join(dir, "off-data") } },
    { name: "on", env: { LLM_ROUTER_HISTORY_ENABLED: "true", LLM_ROUTER_DATA_DIR: path.join(dir, "on-data") } },
  ];
  if (FULL > 0) {
    const full = path.join(dir, "full-data");
    fs.mkdirSync(full, { recursive: true });
    process.stderr.write(`writing ${CAP} records for the full store...\n`);
    writeNedbFile(path.join(full, "history.db"), CAP, Date.now());
    variants.push({ name: "full", env: { LLM_ROUTER_HISTORY_ENABLED: "true", LLM_ROUTER_DATA_DIR: full } });
  }
  const routers: Array<{ proc: Proc; url: string }> = [];
  const procs: Proc[] = [];
  const runs: Run[][] = variants.map(() => []);
  const notes: string[] = [];
  try {
    for (const v of variants) {
      const t0 = performance.now();
      const r = await startTracked(`router-${v.name}`, { ...common, ...v.env }, procs);
      routers.push(r);
      await waitFor(
        async () => {
          const m = (await (await fetch(`${r.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
          return m.data.length > 0;
        },
        { timeoutMs: 60_000, what: `the model on router-${v.name}` },
      );
      // the history service answers once its store is loaded
      const token = await login(r.url);
      await waitFor(
        async () =>
          (
            await fetch(`${r.url}/api/dashboard/request-responses?per_page=1`, {
              headers: { authorization: `Bearer ${token}` },
            })
          ).status === 200,
        { timeoutMs: 120_000, what: `history on router-${v.name}` },
      );
      const ready = (performance.now() - t0) / 1000;
      notes.push(`router-${v.name}: ready in ${ready.toFixed(1)} s, RSS ${rssMb(r.proc.child.pid!).toFixed(0)} MiB`);
      process.stderr.write(`${notes[notes.length - 1]}\n`);
    }
    const report = (name: string, run: Run) =>
      process.stderr.write(
        `${name}: ${run.throughput.toFixed(1)} req/s, p50 ${run.p50.toFixed(2)} ms, p99 ${run.p99.toFixed(1)} ms, max ${run.max.toFixed(0)} ms, cpu ${run.cpuUsPerReq.toFixed(0)} µs/req, trims ${run.trims}, failed ${run.failed}\n`,
      );
    for (let round = 0; round < ROUNDS; round++) {
      for (const i of round % 2 ? [1, 0] : [0, 1]) {
        const run = await measure(routers[i], round === 0 ? 5 : 2, SECONDS);
        runs[i].push(run);
        report(`round ${round + 1} ${variants[i].name}`, run);
      }
      // the full store once the others are warm, between rounds
      if (variants[2] && round < FULL) {
        const run = await measure(routers[2], 2, FULL_SECONDS);
        runs[2].push(run);
        report(`round ${round + 1} full`, run);
      }
    }
    routers.forEach((r, i) => (notes[i] += `; after the runs RSS ${rssMb(r.proc.child.pid!).toFixed(0)} MiB`));
  } finally {
    for (const p of procs) await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const med = (i: number, k: keyof Run) => middle(runs[i].map((r) => r[k]));
  const range = (i: number, k: keyof Run, digits: number) => {
    const xs = runs[i].map((r) => r[k]);
    return xs.length > 1 ? ` (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})` : "";
  };
  const cell = (i: number, k: keyof Run, digits: number) => `${med(i, k).toFixed(digits)}${range(i, k, digits)}`;
  const sum = (i: number, k: keyof Run) => runs[i].reduce((a, r) => a + r[k], 0);
  /** on/off in the same round, median over rounds; the full store against the median of `off`. */
  const ratio = (i: number, k: keyof Run) =>
    i === 0
      ? ""
      : i === 1
        ? `${middle(runs[1].map((r, j) => r[k] / runs[0][j][k])).toFixed(2)}×`
        : `${(med(2, k) / med(0, k)).toFixed(2)}×`;
  const out = [
    `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; load average ${load0} at the start, ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")} at the end.`,
    `Embedded router (one process, instant engine, auth off); open loop at ${RATE} req/s of non-streamed chat completions. off/on: ${ROUNDS} rounds of ${SECONDS} s each, interleaved (order flipped each round) after a warm-up${FULL > 0 ? `; full: ${runs[2]?.length ?? 0} run(s) of ${FULL_SECONDS} s` : ""}.`,
    ...notes.map((n) => `- ${n}`),
    "",
    "Median over runs (min–max); ratio: on/off paired per round, median of the ratios (full: against the median of off):",
    "",
    "| history | runs | req/s done | ratio | p50 ms | ratio | p99 ms | ratio | max ms | router CPU µs/req | ratio | cap trims | failed |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...variants.map(
      (v, i) =>
        `| ${v.name} | ${runs[i].length} | ${cell(i, "throughput", 1)} | ${ratio(i, "throughput")} | ${cell(i, "p50", 2)} | ${ratio(i, "p50")} | ${cell(i, "p99", 1)} | ${ratio(i, "p99")} | ${cell(i, "max", 0)} | ${cell(i, "cpuUsPerReq", 0)} | ${ratio(i, "cpuUsPerReq")} | ${sum(i, "trims")} | ${sum(i, "failed")} |`,
    ),
  ].join("\n");
  console.log(out);
  if (process.env.OUT) fs.writeFileSync(process.env.OUT, out);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
