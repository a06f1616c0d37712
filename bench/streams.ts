/**
 * Many concurrent streams through one router over NATS: what relaying tokens
 * costs the router. A private nats-server, one simulated inference node
 * (LLM_NODE_ENGINE=instant, MS_PER_TOKEN ms a token, a slot for every stream:
 * no wait at the node) and a router on 1 and on 2 processes, auth and
 * history on. For each count of concurrent streams (COUNTS), that many
 * streamed chats of TOKENS tokens are started at once; measured:
 *
 * - every stream completed (its `[DONE]`) with all its tokens;
 * - tokens/s relayed (tokens received by the clients over the wall time);
 * - router CPU µs per streamed token (utime+stime of the router's processes
 *   from /proc over the run, divided by the tokens);
 * - time to first chunk with content, p50 and p99;
 * - router RSS growth per open stream (the peak, sampled every 100 ms while
 *   the streams are open, minus the RSS just before).
 *
 *   npm run bench:streams                      # COUNTS=100,1000,5000 TOKENS=100 MS_PER_TOKEN=20 PROCESSES=floor,floor-raw,1,2
 *   COUNTS=1000 PROCESSES=1 npm run bench:streams
 *   PROFILE_DIR=/tmp/prof COUNTS=1000 PROCESSES=1 npm run bench:streams   # and a CPU profile of the router
 *   NATS_MONITOR=1 ...   # and the NATS server's message counts per connection
 *   WARMUP=50 ...        # fewer warm-up streams (default 1,000, at once, before the counts)
 *
 * `floor` (in PROCESSES) measures the same streams from bench/sse-floor.mjs
 * instead: a bare node:http server writing each token to its client as it
 * comes, one write a token, with nothing else (no NATS, auth or history).
 * Its CPU per token is what relaying one token costs any Node server on
 * this machine, the floor under the router's figure. `floor-raw` is the same
 * server writing each token straight to the socket as an HTTP/1.1 chunk it
 * frames itself, as the router's relay does after its first write
 * (lib/http/respond.ts): the floor for that way of writing.
 *
 * The client runs in this process, on the same cores (2 on the development
 * VM): its own CPU is not counted, but it competes with the router and node.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import {
  Proc,
  createKey,
  freePort,
  startCli,
  startNats,
  startRouter,
  tempDir,
  writeModel,
} from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { percentile } from "./lib";

const COUNTS = (process.env.COUNTS ?? "100,1000,5000").split(",").map(Number);
/** Router process counts, and `floor` / `floor-raw`: the bare Node SSE server of bench/sse-floor.mjs in the router's place. */
type Floor = "floor" | "floor-raw";
const PROCESSES = (process.env.PROCESSES ?? "floor,floor-raw,1,2")
  .split(",")
  .map((p): number | Floor => (p === "floor" || p === "floor-raw" ? p : Number(p)));
const TOKENS = Number(process.env.TOKENS ?? 100);
const MS_PER_TOKEN = Number(process.env.MS_PER_TOKEN ?? 20);
/**
 * Streams run at once before the measured ones: a router's first thousand
 * requests run while V8 still compiles its hot path (one cold count of 1,000
 * cost twice the CPU of the same count warm, session 15); a router in
 * service is warm.
 */
const WARMUP = Number(process.env.WARMUP ?? 1000);
const MODEL = "bench-instant";
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

interface StreamResult {
  ttfc: number;
  tokens: number;
  done: boolean;
}

/** One streamed chat: µs to the first content chunk, content chunks counted, `[DONE]` seen. */
function stream(url: URL, key: string): Promise<StreamResult> {
  const body = JSON.stringify({
    model: MODEL,
    messages: [{ role: "user", content: "Count." }],
    max_tokens: TOKENS,
    stream: true,
  });
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let ttfc = -1;
    let tokens = 0;
    let done = false;
    let tail = "";
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: "/v1/chat/completions",
        method: "POST",
        headers: {
          authorization: `Bearer ${key}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        res.setEncoding("utf8");
        if (res.statusCode !== 200) {
          res.on("data", (d: string) => (tail += d));
          res.on("end", () => reject(new Error(`HTTP ${res.statusCode}: ${tail.slice(0, 200)}`)));
          return;
        }
        res.on("data", (d: string) => {
          const text = tail + d;
          const events = text.split("\n\n");
          tail = events.pop()!;
          for (const e of events) {
            if (e.includes('"content":"x')) {
              if (ttfc < 0) ttfc = Number(process.hrtime.bigint() - t0) / 1000;
              tokens++;
            } else if (e === "data: [DONE]") done = true;
          }
        });
        res.on("end", () => resolve({ ttfc, tokens, done }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The router's processes: the one started and its cluster workers. */
function routerPids(pid: number): number[] {
  const children = fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/stat`, "utf8").split(") ")[1].split(" ")[1] === String(pid);
      } catch {
        return false;
      }
    })
    .map(Number);
  return [pid, ...children];
}

/** CPU seconds (user + system) of the processes. */
function cpuSeconds(pids: number[]): number {
  const tick = 100; // CLK_TCK on Linux
  return pids.reduce((sum, pid) => {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return sum + (Number(fields[11]) + Number(fields[12])) / tick;
  }, 0);
}

/** Resident memory in bytes, summed over the processes. */
function rss(pids: number[]): number {
  return pids.reduce((sum, pid) => {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
    return sum + Number(m![1]) * 1024;
  }, 0);
}

interface Row {
  processes: number | Floor;
  streams: number;
  completed: number;
  tokens: number;
  wallS: number;
  tokensPerS: number;
  cpuUsPerToken: number;
  nodeCpuUsPerToken: number;
  ttfcP50Ms: number;
  ttfcP99Ms: number;
  rssPerStreamKB: number;
}

async function measure(
  processes: number | Floor,
  count: number,
  url: URL,
  key: string,
  router: number[],
  node: number | null,
) {
  // settle the heap first, so that the RSS before is not a warm-up's garbage
  await new Promise((r) => setTimeout(r, 500));
  const rssBefore = rss(router);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rss(router))), 100);
  const cpu0 = cpuSeconds(router);
  const node0 = node === null ? 0 : cpuSeconds([node]);
  const t0 = process.hrtime.bigint();
  const results = await Promise.allSettled(Array.from({ length: count }, () => stream(url, key)));
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(sampler);
  const cpu = cpuSeconds(router) - cpu0;
  const nodeCpu = node === null ? NaN : cpuSeconds([node]) - node0;
  const ok = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
  if (failed.length > 0) process.stderr.write(`  ${failed.length} failed, first: ${String(failed[0].reason)}\n`);
  const tokens = ok.reduce((s, r) => s + r.tokens, 0);
  const ttfcs = ok.map((r) => r.ttfc).filter((t) => t >= 0);
  const row: Row = {
    processes,
    streams: count,
    completed: ok.filter((r) => r.done && r.tokens === TOKENS).length,
    tokens,
    wallS,
    tokensPerS: tokens / wallS,
    cpuUsPerToken: (cpu * 1e6) / tokens,
    nodeCpuUsPerToken: (nodeCpu * 1e6) / tokens,
    ttfcP50Ms: percentile(ttfcs, 50) / 1000,
    ttfcP99Ms: percentile(ttfcs, 99) / 1000,
    rssPerStreamKB: (rssPeak - rssBefore) / 1024 / count,
  };
  process.stderr.write(`  ${JSON.stringify(row)}\n`);
  return row;
}

/** WARMUP streams at once, each of which must complete with all its tokens (a lost chunk is a finding, warm or not). */
async function warmUp(url: URL, key: string): Promise<void> {
  const results = await Promise.all(Array.from({ length: WARMUP }, () => stream(url, key)));
  const short = results.filter((r) => !r.done || r.tokens !== TOKENS).length;
  if (short > 0) throw new Error(`${short} of ${WARMUP} warm-up streams did not complete with all their tokens`);
}

/** Whether the router process a new connection reaches lists MODEL. */
function seesModel(url: URL, key: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: url.hostname,
        port: url.port,
        path: "/v1/models",
        agent: false,
        headers: { authorization: `Bearer ${key}` },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => {
          try {
            resolve(((JSON.parse(body) as { data?: Array<{ id: string }> }).data ?? []).some((m) => m.id === MODEL));
          } catch {
            resolve(false);
          }
        });
      },
    );
    req.on("error", reject);
  });
}

/** The same streams from the bare Node SSE server (bench/sse-floor.mjs). */
async function floor(kind: Floor): Promise<Row[]> {
  const proc = new Proc(
    "sse-floor",
    spawn(process.execPath, [path.join(__dirname, "sse-floor.mjs")], {
      env: {
        ...process.env,
        PORT: "0",
        TOKENS: String(TOKENS),
        MS_PER_TOKEN: String(MS_PER_TOKEN),
        RAW_WRITE: kind === "floor-raw" ? "1" : "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  try {
    await waitFor(() => /sse-floor on \d+/.test(proc.output), { what: "sse-floor listening" });
    const url = new URL(`http://127.0.0.1:${/sse-floor on (\d+)/.exec(proc.output)![1]}`);
    process.stderr.write(`bare Node SSE server: pid ${proc.child.pid}\n`);
    await warmUp(url, "none");
    const rows: Row[] = [];
    for (const count of COUNTS) rows.push(await measure(kind, count, url, "none", [proc.child.pid!], null));
    return rows;
  } finally {
    await proc.stop();
  }
}

async function main() {
  const dir = tempDir("bench-streams");
  const models = path.join(dir, "models");
  writeModel(models, MODEL);
  const rows: Row[] = [];
  for (const processes of PROCESSES) {
    if (typeof processes !== "number") {
      rows.push(...(await floor(processes)));
      continue;
    }
    // NATS_MONITOR=1: the server's per-connection message counts at the end (what crossed NATS, and in how many writes)
    const monitorPort = process.env.NATS_MONITOR === "1" ? await freePort() : undefined;
    const nats = await startNats(undefined, { monitorPort });
    const procs: Proc[] = [nats.proc];
    try {
      const node = startCli("node", {
        LLM_NODE_ENGINE: "instant",
        LLM_NODE_INSTANT_MS_PER_TOKEN: String(MS_PER_TOKEN),
        LLM_NODE_PARALLEL: String(Math.max(...COUNTS)),
        // BATCH_MS=0: every chunk its own message, as before the coalescing (lib/inference/coalesce.ts)
        ...(process.env.BATCH_MS ? { LLM_NODE_STREAM_BATCH_MS: process.env.BATCH_MS } : {}),
        LLM_NODE_MODELS_DIR: models,
        TRANSPORTER: nats.url,
        SERVICES: "inference",
        NODEID: "bench-node",
        LOGLEVEL: "warn",
      });
      procs.push(node);
      const router = await startRouter(
        `router-${processes}`,
        {
          TRANSPORTER: nats.url,
          SERVICES: "router",
          NODEID: "bench-router",
          LLM_ROUTER_PROCESSES: String(processes),
          LOGLEVEL: "info",
        },
        // PROFILE_DIR: a V8 CPU profile of the router, written when it stops
        process.env.PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PROFILE_DIR}`] : [],
      );
      procs.push(router.proc);
      const key = await createKey(router.url, { name: "bench" });
      const url = new URL(router.url);
      // the workers must be up before the pids are read (each answers on the shared port)
      await waitFor(() => routerPids(router.proc.child.pid!).length >= processes, { what: "the router's workers" });
      const pids = routerPids(router.proc.child.pid!);
      // every worker must know the model: new connections (spread over the workers) all see it
      await waitFor(
        async () =>
          (await Promise.all(Array.from({ length: 4 * processes }, () => seesModel(url, key)))).every(Boolean),
        { timeoutMs: 60_000, what: `${MODEL} at every router process` },
      );
      process.stderr.write(`router on ${processes} process(es): pids ${pids.join(", ")}\n`);
      await warmUp(url, key);
      for (const count of COUNTS) rows.push(await measure(processes, count, url, key, pids, node.child.pid!));
      if (monitorPort) {
        const connz = (await (await fetch(`http://127.0.0.1:${monitorPort}/connz`)).json()) as {
          connections: Array<{ cid: number; in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number }>;
        };
        for (const c of connz.connections) {
          const { cid, in_msgs, out_msgs, in_bytes, out_bytes } = c;
          process.stderr.write(
            `NATS connection ${cid}: ${JSON.stringify({ in_msgs, out_msgs, in_bytes, out_bytes })}\n`,
          );
        }
      }
    } finally {
      for (const p of procs.reverse()) await p.stop();
    }
  }

  const f = (x: number, d = 0) => x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(
    [
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}`,
      `${TOKENS} tokens a stream, ${MS_PER_TOKEN} ms a token at the node (instant engine), all streams started at once; ` +
        `node batch window ${process.env.BATCH_MS ?? "5 (default)"} ms.`,
      "",
      "| router processes (floor: bare Node SSE server) | streams | completed | tokens/s | router CPU µs/token | node CPU µs/token | TTFC p50 | TTFC p99 | router RSS/stream |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      ...rows.map(
        (r) =>
          `| ${r.processes} | ${f(r.streams)} | ${f(r.completed)} | ${f(r.tokensPerS)} | ${f(r.cpuUsPerToken, 1)} | ${Number.isNaN(r.nodeCpuUsPerToken) ? "–" : f(r.nodeCpuUsPerToken, 1)} | ${f(r.ttfcP50Ms)} ms | ${f(r.ttfcP99Ms)} ms | ${f(r.rssPerStreamKB, 1)} KB |`,
      ),
    ].join("\n"),
  );
  if (process.env.OUT) fs.writeFileSync(process.env.OUT, JSON.stringify(rows, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
