/**
 * The embedded history store at its cap: filling it, its memory, and how long
 * a filtered, paginated `history.list` takes over 100,000 records.
 *
 *   npm run bench:history-query        # N=100000 RUNS=30 BUDGET_S=4 MIN_RUNS=5 HTTP=0|1|only
 *
 * A local ServiceBroker in this process (no transporter) hosts
 * services/history.service.ts on a NeDB file in a temp dir, with
 * LLM_ROUTER_HISTORY_MAX_RECORDS = N. It:
 *   1. emits N realistic `history.record` events (a few models and nodes,
 *      mostly 200s, ts over the last 7 days, bodies of a few hundred bytes),
 *      200 at a time (the service's batch), each batch flushed, and times the
 *      writes and the event-loop stalls they cause;
 *   2. reports RSS and heapUsed after a GC, before and after, and the file size;
 *   3. times `history.list` (broker.call) for several filters, interleaved:
 *      RUNS times each, or fewer (at least MIN_RUNS) once a filter has taken
 *      BUDGET_S seconds; and the store calls one list makes (sorted find, count);
 *   4. writes 200 more records, which takes the store past its cap and trims it
 *      to 95 %: the time of that flush and the longest event-loop stall;
 *   5. with HTTP=1 (or HTTP=only: steps 1, 2 and 5), starts a router (SERVICES=router) on a copy of the full
 *      file and times `GET /api/dashboard/request-responses` with the same
 *      filters, plus its start-up time and RSS against a router with an
 *      empty store.
 * Run with --expose-gc (the npm script does) for the memory figures.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import type { HistoryRecord } from "../lib/history/record";
import { searchText } from "../lib/history/query";
import { login, startCli, tempDir, type Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { percentile } from "./lib";

const N = Number(process.env.N ?? 100_000);
const RUNS = Number(process.env.RUNS ?? 30);
const MIN_RUNS = Number(process.env.MIN_RUNS ?? 5);
const BUDGET_S = Number(process.env.BUDGET_S ?? 4);
/** "1": also over HTTP; "only": fill, then only the HTTP part. */
const HTTP = process.env.HTTP ?? "0";
const DAY = 86_400_000;
/** Records per flush while filling: the service's own batch size. */
const CHUNK = 200;

export const MODELS = ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct", "phi-3-mini"];
export const NODES = ["gpu-a-1", "gpu-a-2", "gpu-b-1", "cpu-1"];
/** A word in about 0.5 % of prompts, for the text search. */
export const RARE_WORD = "invoice";
const WORDS = (
  "the a of to and in is it you that for on with as are this be at have from or one had by word but not what all " +
  "were we when your can said there use an each which she do how their if will up other about out many then them " +
  "these so some her would make like him into time has look two more write go see number no way could people my " +
  "than first water been call who oil its now find long down day did get come made may part summary translate " +
  "explain code python function error list table weather recipe email draft review"
).split(" ");

/** A small seeded PRNG (mulberry32), so every run stores the same records. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Records as the api would send them: ts spread over the last `spanMs` before `now`. */
export function* makeRecords(
  n: number,
  now: number,
  spanMs = 7 * DAY - 3_600_000,
  seed = 42,
): Generator<HistoryRecord> {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const sentence = (min: number, max: number) =>
    Array.from({ length: min + Math.floor(r() * (max - min)) }, () => pick(WORDS)).join(" ");
  const hex = (len: number) => Array.from({ length: len }, () => Math.floor(r() * 16).toString(16)).join("");
  for (let i = 0; i < n; i++) {
    const ts = Math.floor(now - r() * spanMs);
    const model = r() < 0.4 ? MODELS[0] : pick(MODELS);
    const node = pick(NODES);
    const u = r();
    const status =
      u < 0.94 ? 200 : u < 0.96 ? 400 : u < 0.97 ? 404 : u < 0.98 ? 429 : u < 0.99 ? 499 : pick([500, 502, 503]);
    const k = r();
    const kind = k < 0.8 ? "chat" : k < 0.9 ? "completion" : k < 0.97 ? "embedding" : "legacy";
    const stream = kind !== "embedding" && r() < 0.5;
    let prompt = sentence(20, 50);
    if (r() < 0.005) prompt += ` please check the ${RARE_WORD} total`;
    const tokensIn = 20 + Math.floor(r() * 200);
    const tokensOut = status === 200 && kind !== "embedding" ? 10 + Math.floor(r() * 300) : null;
    const duration = status === 200 ? Math.round((50 + r() * 3000) * 10) / 10 : Math.round(r() * 200 * 10) / 10;
    const reqId = `req-${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
    const request_body =
      kind === "embedding"
        ? { model, input: prompt }
        : kind === "completion"
          ? { model, prompt, max_tokens: 256, temperature: 0.7, stream }
          : {
              model,
              messages: [
                { role: "system", content: "You are a helpful assistant." },
                { role: "user", content: prompt },
              ],
              max_tokens: 256,
              temperature: 0.7,
              stream,
            };
    const usage = {
      prompt_tokens: tokensIn,
      completion_tokens: tokensOut ?? 0,
      total_tokens: tokensIn + (tokensOut ?? 0),
    };
    const response_body =
      status !== 200
        ? null
        : kind === "embedding"
          ? { object: "list", embeddings: 1, usage }
          : stream
            ? { text: sentence(30, 70), finish_reason: "stop", usage }
            : {
                id: `chatcmpl-${hex(32)}`,
                object: "chat.completion",
                created: Math.floor(ts / 1000),
                model,
                choices: [
                  { index: 0, message: { role: "assistant", content: sentence(30, 70) }, finish_reason: "stop" },
                ],
                usage,
              };
    const tried = status === 502 || status === 503 ? [node, pick(NODES)] : [node];
    yield {
      id: reqId,
      ts,
      started_at: new Date(ts).toISOString(),
      finished_at: new Date(ts + duration).toISOString(),
      endpoint:
        kind === "embedding" ? "/v1/embeddings" : kind === "completion" ? "/v1/completions" : "/v1/chat/completions",
      kind,
      stream,
      model,
      node_id: status === 404 ? null : node,
      node_name: status === 404 ? null : node,
      client_ip: `10.0.${Math.floor(r() * 4)}.${1 + Math.floor(r() * 250)}`,
      api_key_id: `key-${Math.floor(r() * 20)}`,
      api_key_name: `team-${Math.floor(r() * 20)}`,
      user_id: `user-${Math.floor(r() * 10)}`,
      request_body,
      response_body,
      status,
      error: status === 200 ? null : `upstream answered ${status}`,
      duration_ms: duration,
      ttft_ms: status === 200 ? Math.round(r() * 300 * 10) / 10 : null,
      tokens_in: tokensIn,
      tokens_out: tokensOut,
      retries: tried.length - 1,
      nodes_tried: tried,
    };
  }
}

/** The next `n` of a generator's values. */
export function take<T>(it: Iterator<T>, n: number): T[] {
  const out: T[] = [];
  while (out.length < n) {
    const r = it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

/**
 * Writes `n` records as a NeDB file, one JSON line each, as the history service
 * stores them (with `search_text` and an `_id`): a full store without the wait.
 */
export function writeNedbFile(file: string, n: number, now: number): void {
  const fd = fs.openSync(file, "w");
  try {
    const it = makeRecords(n, now);
    for (let i = 0; i < n; i += CHUNK) {
      const lines = take(it, CHUNK).map((rec, j) =>
        JSON.stringify({
          ...rec,
          search_text: searchText(rec.request_body, rec.response_body),
          _id: `b${(i + j).toString(36).padStart(15, "0")}`,
        }),
      );
      fs.writeSync(fd, `${lines.join("\n")}\n`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The list filters timed, as query-string values. */
export function queries(now: number): Array<[string, Record<string, string>]> {
  const iso = (t: number) => new Date(t).toISOString();
  return [
    ["no filter, page 1", {}],
    ["model", { model: MODELS[1] }],
    ["model + status=error", { model: MODELS[1], status: "error" }],
    ["node + kind", { node: NODES[2], kind: "chat" }],
    ["time range (1 day of 7)", { from: iso(now - 3 * DAY), to: iso(now - 2 * DAY) }],
    ["no filter, page 50", { page: "50" }],
    [`text search q=${RARE_WORD}`, { q: RARE_WORD }],
    ["model + range + q, per_page 200", { model: MODELS[0], from: iso(now - 5 * DAY), q: "weather", per_page: "200" }],
  ];
}

const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function memory() {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Timings of each named call, interleaved, after a warm-up round: RUNS each,
 * or fewer (at least MIN_RUNS) once a call has used BUDGET_S seconds.
 */
async function timeAll(calls: Array<[string, () => Promise<unknown>]>): Promise<number[][]> {
  const times = calls.map(() => [] as number[]);
  const spent = calls.map(() => 0);
  for (let run = -1; run < RUNS; run++) {
    for (const [i, [, fn]] of calls.entries()) {
      if (run >= MIN_RUNS && spent[i] > BUDGET_S * 1000) continue;
      const t = await timeIt(fn);
      if (run >= 0) {
        times[i].push(t);
        spent[i] += t;
      }
    }
  }
  return times;
}

function rssOf(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Starts a router, listed in `procs` before it is waited for, so that a failed start is stopped too. */
export async function startTracked(
  name: string,
  env: Record<string, string>,
  procs: Proc[],
): Promise<{ proc: Proc; url: string }> {
  const proc = startCli(name, env);
  procs.push(proc);
  const listening = proc.waitForOutput(/LLM Router listening on (http:\/\/\S+)/, 120_000);
  const exited = proc.exited.then((code) => {
    throw new Error(`${name} exited (${code}):\n${proc.output.slice(-3000)}`);
  });
  // whichever loses is settled later: nobody waits for it
  listening.catch(() => undefined);
  exited.catch(() => undefined);
  const m = await Promise.race([listening, exited]);
  return { proc, url: m[1] };
}

interface Adapter {
  find(q: { query?: object; sort?: string[]; offset?: number; limit?: number }): Promise<unknown[]>;
  count(q: { query?: object }): Promise<number>;
  /** The NeDB datastore under moleculer-db's adapter. */
  db: { countAsync(q: object): Promise<number> };
}

async function main() {
  const hasGc = typeof (globalThis as { gc?: unknown }).gc === "function";
  if (!hasGc) process.stderr.write("warning: run with --expose-gc for stable memory figures\n");
  const dir = tempDir("history-query");
  process.env.LLM_ROUTER_DATA_DIR = dir;
  process.env.LLM_ROUTER_HISTORY_MAX_RECORDS = String(N);
  delete process.env.MONGO_URI;
  // read after the env above is set: the service takes its settings (and its store) when loaded
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const HistoryService = (require("../services/history.service") as typeof import("../services/history.service"))
    .default;
  const broker = new ServiceBroker({ logger: false });
  broker.createService(HistoryService as unknown as ServiceSchema);
  const file = path.join(dir, "history.db");
  const lines: string[] = [];
  const log = (s: string) => {
    lines.push(s);
    process.stderr.write(`${s}\n`);
  };
  const routerDirs: string[] = [];
  const procs: Proc[] = [];
  try {
    await broker.start();
    const adapter = (broker.getLocalService("history") as unknown as { adapter: Adapter }).adapter;
    const now = Date.now();
    const avgJson = take(makeRecords(1000, now), 1000).reduce((a, r) => a + JSON.stringify(r).length, 0) / 1000;
    const before = memory();

    // 1. fill (records made as they are sent, so only the store holds them), a service batch at a time
    const records = makeRecords(N, now);
    const flushMs: number[] = [];
    const fillLag = monitorEventLoopDelay({ resolution: 2 });
    fillLag.enable();
    for (let i = 0; i < N; i += CHUNK) {
      const chunk = take(records, CHUNK);
      const f0 = performance.now();
      await Promise.all(chunk.map((r) => broker.emit("history.record", r)));
      await broker.call("history.flush");
      flushMs.push(performance.now() - f0);
    }
    fillLag.disable();
    const fillS = flushMs.reduce((a, b) => a + b, 0) / 1000;
    const stored = await adapter.db.countAsync({});
    const after = memory();
    const fileBytes = fs.statSync(file).size;

    log(
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`,
    );
    log(
      `${N.toLocaleString("en")} records (about ${avgJson.toFixed(0)} bytes of JSON each) written through \`history.record\` events in ${fillS.toFixed(1)} s (${Math.round(N / fillS).toLocaleString("en")} records/s), ${CHUNK} per flush as the service batches them: a flush takes ${ms(percentile(flushMs, 50))} ms median, ${ms(percentile(flushMs, 99))} ms p99; longest event-loop stall while filling ${(fillLag.max / 1e6).toFixed(0)} ms; ${stored.toLocaleString("en")} stored.`,
    );
    log("");
    log("| memory (this process, after GC) | before | after | added |");
    log("| --- | --- | --- | --- |");
    log(`| RSS | ${mb(before.rss)} | ${mb(after.rss)} | ${mb(after.rss - before.rss)} |`);
    log(`| heapUsed | ${mb(before.heapUsed)} | ${mb(after.heapUsed)} | ${mb(after.heapUsed - before.heapUsed)} |`);
    log(`| NeDB file \`history.db\` | | ${mb(fileBytes)} | ${(fileBytes / N).toFixed(0)} bytes/record |`);
    log("");

    const qs = queries(now);
    let routerDir: string | null = null;
    if (HTTP !== "0") {
      routerDir = tempDir("history-http");
      routerDirs.push(routerDir);
      fs.copyFileSync(file, path.join(routerDir, "history.db"));
    }
    if (HTTP !== "only") await inProcess();
    await broker.stop();

    // 3 and 4, in this process (declared here, run above)
    async function inProcess() {
      // 3. queries
      const counts = await Promise.all(
        qs.map(([, q]) => broker.call<{ total_count: number }, object>("history.list", { query: q })),
      );
      const times = await timeAll(qs.map(([name, q]) => [name, () => broker.call("history.list", { query: q })]));
      log(
        `\`history.list\` (broker.call, same process), per_page 50 unless noted, interleaved after a warm-up round; ms:`,
      );
      log("");
      log("| query | matches | runs | median | p90 | max |");
      log("| --- | --- | --- | --- | --- | --- |");
      qs.forEach(([name], i) =>
        log(
          `| ${name} | ${counts[i].total_count.toLocaleString("en")} | ${times[i].length} | ${ms(percentile(times[i], 50))} | ${ms(percentile(times[i], 90))} | ${ms(Math.max(...times[i]))} |`,
        ),
      );
      log("");

      // what one unfiltered list costs in the store, call by call
      const parts: Array<[string, () => Promise<unknown>]> = [
        ["find, sort -ts, limit 50 (the list's page)", () => adapter.find({ query: {}, sort: ["-ts"], limit: 50 })],
        ["count (the list's total)", () => adapter.count({ query: {} })],
        ["find, no sort, limit 50", () => adapter.find({ query: {}, limit: 50 })],
        [
          "find model=…, sort -ts, limit 50",
          () => adapter.find({ query: { model: MODELS[1] }, sort: ["-ts"], limit: 50 }),
        ],
        ["count model=…", () => adapter.count({ query: { model: MODELS[1] } })],
        ["NeDB's own countAsync({}) (no copies)", () => adapter.db.countAsync({})],
      ];
      const ptimes = await timeAll(parts);
      log("Store calls alone (moleculer-db's NeDB adapter, no broker); ms:");
      log("");
      log("| store call | runs | median | p90 |");
      log("| --- | --- | --- | --- |");
      parts.forEach(([name], i) =>
        log(`| ${name} | ${ptimes[i].length} | ${ms(percentile(ptimes[i], 50))} | ${ms(percentile(ptimes[i], 90))} |`),
      );
      log("");

      // 4. past the cap: one flush that trims to 95 % and compacts the file
      const lag = monitorEventLoopDelay({ resolution: 5 });
      lag.enable();
      await Promise.all([...makeRecords(200, Date.now(), 1000, 7)].map((r) => broker.emit("history.record", r)));
      const trimMs = await timeIt(() => broker.call("history.flush"));
      lag.disable();
      const trimmed = await adapter.db.countAsync({});
      const afterTrim = memory();
      log(
        `Past the cap: 200 more records, one flush that trims to 95 % (count, sorted find of the oldest, remove, file compaction): **${trimMs.toFixed(0)} ms**, longest event-loop stall ${(lag.max / 1e6).toFixed(0)} ms; ${trimmed.toLocaleString("en")} records left, file ${mb(fs.statSync(file).size)}, RSS ${mb(afterTrim.rss)}, heapUsed ${mb(afterTrim.heapUsed)}.`,
      );
      log("");
    }

    // 5. the same queries over HTTP on a router that loaded the full file
    if (routerDir) {
      const emptyDir = tempDir("history-empty");
      routerDirs.push(emptyDir);
      const empty = await startTracked("router-empty", { SERVICES: "router", LLM_ROUTER_DATA_DIR: emptyDir }, procs);
      const tok = await login(empty.url);
      await fetch(`${empty.url}/api/dashboard/request-responses`, { headers: { authorization: `Bearer ${tok}` } });
      const emptyRss = rssOf(empty.proc.child.pid!);
      await empty.proc.stop();
      const s0 = performance.now();
      const router = await startTracked(
        "router-full",
        { SERVICES: "router", LLM_ROUTER_DATA_DIR: routerDir, LLM_ROUTER_HISTORY_MAX_RECORDS: String(N) },
        procs,
      );
      const listening = (performance.now() - s0) / 1000;
      const token = await login(router.url);
      const get = async (q: Record<string, string>) => {
        const res = await fetch(`${router.url}/api/dashboard/request-responses?${new URLSearchParams(q)}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
        return (await res.json()) as { total_count: number };
      };
      const first = await waitFor(() => get({}), { timeoutMs: 120_000, what: "the first list" });
      const ready = (performance.now() - s0) / 1000;
      const fullRss = rssOf(router.proc.child.pid!);
      const htimes = await timeAll(qs.map(([name, q]) => [name, () => get(q)]));
      log(
        `Over HTTP: a router (SERVICES=router, one process) started on a copy of the full file: listening after ${listening.toFixed(1)} s, first list answered after ${ready.toFixed(1)} s (total_count ${first.total_count.toLocaleString("en")}); RSS ${mb(fullRss)} against ${mb(emptyRss)} for the same router with an empty store.`,
      );
      log("");
      log("`GET /api/dashboard/request-responses` (login token, fetch keep-alive), the same filters; ms:");
      log("");
      log("| query | runs | median | p90 | max |");
      log("| --- | --- | --- | --- | --- |");
      qs.forEach(([name], i) =>
        log(
          `| ${name} | ${htimes[i].length} | ${ms(percentile(htimes[i], 50))} | ${ms(percentile(htimes[i], 90))} | ${ms(Math.max(...htimes[i]))} |`,
        ),
      );
    }
  } finally {
    for (const p of procs) await p.stop();
    if (broker.started) await broker.stop();
    for (const d of [dir, ...routerDirs]) fs.rmSync(d, { recursive: true, force: true });
  }
  console.log(lines.join("\n"));
  if (process.env.OUT) fs.writeFileSync(process.env.OUT, lines.join("\n"));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
