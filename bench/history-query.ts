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
 *      BUDGET_S seconds; `history.stats`, `history.get`, an export page, and the
 *      parts of one list (the in-memory index's selection, the store's fetch
 *      of the page's documents by `_id`);
 *   4. writes 200 more records, which takes the store past its cap and trims it
 *      to 95 %: the time of that flush and the longest event-loop stall; then
 *      the hourly purge, which compacts the NeDB file after removals;
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
import { parseFilter } from "../lib/history/query";
import { HistoryIndex, type IndexEntry, type StoredDoc } from "../lib/history/record-index";
import { login, startCli, tempDir, type Proc } from "../test/helpers/procs";
import { waitFor } from "../test/helpers/wait";
import { CHUNK, makeRecords, MODELS, queries, RARE_WORD, take } from "./history-data";
import { percentile } from "./lib";

const N = Number(process.env.N ?? 100_000);
const RUNS = Number(process.env.RUNS ?? 30);
const MIN_RUNS = Number(process.env.MIN_RUNS ?? 5);
const BUDGET_S = Number(process.env.BUDGET_S ?? 4);
/** "1": also over HTTP; "only": fill, then only the HTTP part. */
const HTTP = process.env.HTTP ?? "0";

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

/** The embedded store the history service holds (lib/history/nedb-store.ts), its private parts read here. */
interface EmbeddedStore {
  index: HistoryIndex;
  docs: Map<string, StoredDoc>;
  docsOf(e: IndexEntry[]): HistoryRecord[];
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
    const store = () => (broker.getLocalService("history") as unknown as { store: EmbeddedStore }).store;
    const now = Date.now();
    const avgJson = take(makeRecords(1000, now), 1000).reduce((a, r) => a + JSON.stringify(r).length, 0) / 1000;
    const before = memory();

    // 1. fill (records made as they are sent, so only the store holds them), a service batch at a time
    const records = makeRecords(N, now);
    const flushMs: number[] = [];
    // event-loop delay while the service takes and writes the records (not while this bench makes them)
    const fillLag = monitorEventLoopDelay({ resolution: 2 });
    for (let i = 0; i < N; i += CHUNK) {
      const chunk = take(records, CHUNK);
      fillLag.enable();
      const f0 = performance.now();
      await Promise.all(chunk.map((r) => broker.emit("history.record", r)));
      await broker.call("history.flush");
      flushMs.push(performance.now() - f0);
      fillLag.disable();
    }
    const fillS = flushMs.reduce((a, b) => a + b, 0) / 1000;
    const stored = store().index.size;
    const after = memory();
    const fileBytes = fs.statSync(file).size;
    // the index's own share once searched: a second index over the same documents, with their search texts and signatures
    let extra: HistoryIndex | null = new HistoryIndex();
    extra.load(store().docs.values());
    extra.signSome(Infinity);
    const withExtra = memory();
    const indexHeap = withExtra.heapUsed - after.heapUsed;
    const indexBuffers = withExtra.arrayBuffers - after.arrayBuffers;
    extra = null;
    void extra;

    log(
      `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`,
    );
    log(
      `${N.toLocaleString("en")} records (about ${avgJson.toFixed(0)} bytes of JSON each) written through \`history.record\` events in ${fillS.toFixed(1)} s (${Math.round(N / fillS).toLocaleString("en")} records/s), ${CHUNK} per flush as the service batches them: a flush takes ${ms(percentile(flushMs, 50))} ms median, ${ms(percentile(flushMs, 99))} ms p99; event-loop delay while filling p99 ${(fillLag.percentile(99) / 1e6).toFixed(1)} ms, longest ${(fillLag.max / 1e6).toFixed(0)} ms; ${stored.toLocaleString("en")} stored.`,
    );
    log("");
    log("| memory (this process, after GC) | before | after | added |");
    log("| --- | --- | --- | --- |");
    log(`| RSS | ${mb(before.rss)} | ${mb(after.rss)} | ${mb(after.rss - before.rss)} |`);
    log(`| heapUsed | ${mb(before.heapUsed)} | ${mb(after.heapUsed)} | ${mb(after.heapUsed - before.heapUsed)} |`);
    log(
      `| of which the in-memory index | | | ${mb(indexHeap)} heap + ${mb(indexBuffers)} signatures (${((indexHeap + indexBuffers) / N).toFixed(0)} bytes/record) |`,
    );
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
      // 3. queries: the first text search checks every record by its text and starts their signatures in the
      // background; the timed runs below (which never yield to the event loop's check phase) come after those
      const firstQ = await timeIt(() => broker.call("history.list", { query: { q: RARE_WORD } }));
      while (store().index.signSome(0) > 0) await new Promise((r) => setImmediate(r));
      log(`The first text search after the fill (no record signed yet): ${firstQ.toFixed(0)} ms.`);
      log("");
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

      // the other reads the dashboard makes, and the parts of one list
      const latest = (await broker.call<{ records: HistoryRecord[] }, object>("history.list", { query: {} }))
        .records[0];
      const svc = store();
      const page50 = svc.index.select(parseFilter({}), 0, 50).entries;
      const parts: Array<[string, () => Promise<unknown>]> = [
        ["`history.stats` (last hour)", () => broker.call("history.stats")],
        ["`history.get` (one record by id)", () => broker.call("history.get", { id: latest.id })],
        [
          "`history.page` (an export page of 500, no filter)",
          () => broker.call("history.page", { filter: parseFilter({}), limit: 500 }),
        ],
        ["index: select, no filter (page + total)", async () => svc.index.select(parseFilter({}), 0, 50)],
        ["index: select, model (page + total)", async () => svc.index.select(parseFilter({ model: MODELS[1] }), 0, 50)],
        ["index: select, q (page + total)", async () => svc.index.select(parseFilter({ q: RARE_WORD }), 0, 50)],
        ["store: the page's 50 documents by `_id`", async () => svc.docsOf(page50)],
      ];
      const ptimes = await timeAll(parts);
      log("Other reads, and the parts of one list (the index alone, the store fetch alone); ms:");
      log("");
      log("| call | runs | median | p90 |");
      log("| --- | --- | --- | --- |");
      parts.forEach(([name], i) =>
        log(`| ${name} | ${ptimes[i].length} | ${ms(percentile(ptimes[i], 50))} | ${ms(percentile(ptimes[i], 90))} |`),
      );
      log("");

      // 4. past the cap: one flush that trims to 95 % (the file is compacted by the hourly purge, timed after)
      const lag = monitorEventLoopDelay({ resolution: 2 });
      lag.enable();
      await Promise.all([...makeRecords(200, Date.now(), 1000, 7)].map((r) => broker.emit("history.record", r)));
      const trimMs = await timeIt(() => broker.call("history.flush"));
      lag.disable();
      const trimmed = store().index.size;
      const afterTrim = memory();
      log(
        `Past the cap: 200 more records, one flush that trims to 95 % (the index drops the oldest, the store removes them by \`_id\`, 100 at a time): **${trimMs.toFixed(0)} ms**, longest event-loop stall ${(lag.max / 1e6).toFixed(1)} ms; ${trimmed.toLocaleString("en")} records left, file ${mb(fs.statSync(file).size)}, RSS ${mb(afterTrim.rss)}, heapUsed ${mb(afterTrim.heapUsed)}.`,
      );
      const plag = monitorEventLoopDelay({ resolution: 2 });
      plag.enable();
      const purgeMs = await timeIt(() => broker.call("history.purge"));
      plag.disable();
      log(
        `The hourly purge after that trim (nothing expired; it rewrites the NeDB file because records were removed): ${purgeMs.toFixed(0)} ms, longest event-loop stall ${(plag.max / 1e6).toFixed(0)} ms; file ${mb(fs.statSync(file).size)}.`,
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
