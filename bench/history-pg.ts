/**
 * History on PostgreSQL: how long a filtered, paginated list takes over N
 * records (default 1,000,000), through the store the history service uses
 * (lib/history/pg-store.ts), on the machine's PostgreSQL.
 *
 *   npm run bench:history-pg          # N=1000000 RUNS=20 (server: LLM_ROUTER_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432)
 *
 * It creates a database of its own (dropped at the end; KEEP=1 keeps it),
 * migrates it, fills it with the same seeded records as the NeDB bench
 * (bench/history-data.ts) through the store's batched inserts, with the
 * trigram index dropped meanwhile and built again after (as a bulk load
 * would; both timed), clusters the table by time (records arrive in time
 * order in real use; the generated ones come in random order) and ANALYZEs,
 * then times the NeDB bench's list filters
 * (the store's `list`: the page and the total count), RUNS times each,
 * interleaved, and the keyset page an export reads. REUSE=<database> times
 * the queries on a database a KEEP=1 run left (no fill).
 */
import { parseFilter } from "../lib/history/query";
import type { HistoryRecord } from "../lib/history/record";
import { PgHistoryStore } from "../lib/history/pg-store";
import type { Doc } from "../lib/history/store";
import { createTestDatabase, serverUrl } from "../test/helpers/postgres";
import { makeRecords, queries, take } from "./history-data";
import { percentile } from "./lib";

const N = Number(process.env.N ?? 1_000_000);
const RUNS = Number(process.env.RUNS ?? 20);
const FILL_CHUNK = 5_000;

const asDoc = ({ request_body, response_body, ...rest }: HistoryRecord): Doc => ({
  ...rest,
  request_json: JSON.stringify(request_body ?? null),
  response_json: JSON.stringify(response_body ?? null),
});

const quiet = { info: () => undefined, warn: console.warn, error: console.error };

type Db = { query(sql: string): Promise<[Array<Record<string, unknown>>]> };

/** Fills the store with N generated records (ts up to `now`), as described above. */
async function fill(store: PgHistoryStore, db: Db, now: number): Promise<void> {
  await db.query("DROP INDEX IF EXISTS history_search_text");
  let t = performance.now();
  const it = makeRecords(N, now);
  for (let i = 0; i < N; i += FILL_CHUNK) {
    await store.insert(take(it, FILL_CHUNK).map(asDoc));
    if ((i / FILL_CHUNK) % 20 === 0) process.stderr.write(`\r  filled ${i.toLocaleString()}…`);
  }
  const fillS = (performance.now() - t) / 1000;
  process.stderr.write("\n");
  t = performance.now();
  await db.query("CREATE INDEX history_search_text ON history USING gin (search gin_trgm_ops)");
  const indexS = (performance.now() - t) / 1000;
  await db.query("CLUSTER history USING history_ts");
  await db.query("ANALYZE history");
  const [[size]] = await db.query(
    "SELECT pg_size_pretty(pg_total_relation_size('history')) AS total, pg_size_pretty(pg_relation_size('history_search_text')) AS search",
  );
  console.log(`PostgreSQL history: ${N.toLocaleString()} records`);
  console.log(
    `fill: ${fillS.toFixed(1)} s (${Math.round(N / fillS).toLocaleString()} records/s, trigram index off); ` +
      `trigram index built after: ${indexS.toFixed(1)} s; table with indexes ${String(size.total)}, trigram index ${String(size.search)}`,
  );
}

async function main(): Promise<void> {
  const reuse = process.env.REUSE;
  const pg = reuse
    ? { url: `${serverUrl()}/${reuse}`, name: reuse, drop: async () => undefined }
    : await createTestDatabase("llmr_bench");
  const store = await PgHistoryStore.open(pg.url, {
    history: { retentionDays: 3650, maxRecords: Infinity },
    log: quiet,
  });
  const db = (store as unknown as { db: Db }).db;
  try {
    // a reused database: its records' newest ts is the `now` they were made for
    const [[newest]] = await db.query("SELECT max(ts) AS ts FROM history");
    const now = reuse ? Number(newest.ts) : Date.now();
    if (!reuse) await fill(store, db, now);

    const cases = queries(now).map(([label, q]) => ({ label, f: parseFilter(q), ms: [] as number[], total: 0 }));
    for (let run = 0; run < RUNS; run++) {
      for (const c of cases) {
        const s = performance.now();
        const { total } = await store.list(c.f, (c.f.page - 1) * c.f.per_page, c.f.per_page);
        c.ms.push(performance.now() - s);
        c.total = total;
      }
    }
    console.log("\n| list (page + total count)         | matches   | p50 ms | p95 ms |");
    console.log("| --------------------------------- | --------- | ------ | ------ |");
    for (const c of cases) {
      const p = (q: number) => percentile(c.ms, q).toFixed(1).padStart(6);
      console.log(`| ${c.label.padEnd(33)} | ${c.total.toLocaleString().padStart(9)} | ${p(50)} | ${p(95)} |`);
    }
    // an export reads keyset pages of 500
    const pageMs: number[] = [];
    let after: { ts: number; id: string } | undefined;
    for (let i = 0; i < RUNS; i++) {
      const s = performance.now();
      const rows = await store.page(parseFilter({}), after, 500);
      pageMs.push(performance.now() - s);
      const last = rows[rows.length - 1];
      after = last ? { ts: last.ts, id: last.id } : undefined;
    }
    console.log(
      `\nexport keyset page of 500: p50 ${percentile(pageMs, 50).toFixed(1)} ms, p95 ${percentile(pageMs, 95).toFixed(1)} ms`,
    );
  } finally {
    await store.close();
    if (process.env.KEEP !== "1" && !reuse) await pg.drop();
    else console.log(`kept the database ${pg.name}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
