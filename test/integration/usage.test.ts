/**
 * Usage from the daily roll-ups on a real router (one process with an
 * instant-engine node, so no model is loaded): chats with two API keys,
 * then `GET /api/usage` per key equals the sums over the history records of
 * the same requests, per model and per day too; the CSV has a header and the
 * same rows; bad queries are 400s naming the field; a viewer sees only the
 * usage of their own key.
 */
import fs from "node:fs";
import path from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny";
const models = tempDir("usage-models");
fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "instant: never loaded");

interface Rec {
  ts: number;
  model: string | null;
  api_key_id: string | null;
  user_id: string | null;
  status: number;
  tokens_in: number | null;
  tokens_out: number | null;
}
interface Row {
  group: string | null;
  requests: number;
  errors: number;
  tokens_in: number;
  tokens_out: number;
  median_latency_ms: number | null;
}
interface Report {
  group_by: string;
  from: string;
  to: string;
  rows: Row[];
}

let router: { proc: Proc; url: string };
let admin: RouterClient;
let viewer: RouterClient;
let viewerId: string;
let records: Rec[];

const usage = async (query: string, as = admin) => {
  const r = await as.json<Report>("GET", `/api/usage${query}`);
  if (r.status !== 200) throw new Error(`GET /api/usage${query} answered ${r.status}: ${r.text}`);
  return r.body;
};

/** The groups' sums over history records, as the usage report has them (sorted, nulls last). */
function sums(recs: Rec[], group: (r: Rec) => string | null): Omit<Row, "median_latency_ms">[] {
  const by = new Map<string | null, Omit<Row, "median_latency_ms">>();
  for (const r of recs) {
    const g = group(r);
    const s = by.get(g) ?? { group: g, requests: 0, errors: 0, tokens_in: 0, tokens_out: 0 };
    s.requests += 1;
    s.errors += r.status >= 400 ? 1 : 0;
    s.tokens_in += r.tokens_in ?? 0;
    s.tokens_out += r.tokens_out ?? 0;
    by.set(g, s);
  }
  return [...by.values()].sort((a, b) =>
    a.group === b.group ? 0 : a.group === null ? 1 : b.group === null ? -1 : a.group < b.group ? -1 : 1,
  );
}

const withoutMedian = (rows: Row[]) => rows.map(({ median_latency_ms: _m, ...rest }) => rest);
const day = (ts: number) => new Date(ts).toISOString().slice(0, 10);

beforeAll(async () => {
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_ROUTER_DATA_DIR: tempDir("usage-data"),
  });
  admin = routerClient(router.url, { token: await login(router.url) });
  await waitFor(async () => (await admin.nodes()).some((n) => n.models.includes(MODEL)), {
    timeoutMs: 30_000,
    what: "the node's model in the table",
  });
  const made = await admin.json("POST", "/api/users", {
    username: "vera",
    password: "viewer-password",
    role: "viewer",
  });
  expect(made.status).toBe(201);
  viewerId = made.body.id;
  viewer = routerClient(router.url, { token: await login(router.url, "vera", "viewer-password") });
  const teamA = routerClient(router.url, { key: await createKey(router.url, { name: "team-a" }) });
  const teamB = routerClient(router.url, { key: await createKey(router.url, { name: "team-b", owner: viewerId }) });

  const chat = async (client: RouterClient, maxTokens: number, model = MODEL) => {
    const res = await client.chat({ model, messages: [{ role: "user", content: "hi" }], max_tokens: maxTokens });
    await res.text();
    return res.status;
  };
  for (const n of [3, 5, 8]) expect(await chat(teamA, n)).toBe(200);
  for (const n of [2, 13]) expect(await chat(teamB, n)).toBe(200);
  // an error: a model nobody serves
  expect(await chat(teamB, 4, "no-such-model")).toBe(404);

  const all = await waitFor(
    async () => {
      const r = await admin.json<{ records: Rec[] }>("GET", "/api/dashboard/request-responses?per_page=200");
      return r.body.records.length === 6 ? r.body.records : null;
    },
    { what: "6 history records" },
  );
  records = all;
  // the roll-ups are flushed every few seconds: until they hold every request
  await waitFor(
    async () => (await usage("?group_by=key")).rows.reduce((a, r) => a + r.requests, 0) === records.length,
    { timeoutMs: 30_000, what: "the usage roll-ups to count all 6 requests" },
  );
}, 90_000);

afterAll(async () => {
  await router?.proc.stop();
});

describe("GET /api/usage", () => {
  test("per key: the sums over the history records of each key", async () => {
    const report = await usage("?group_by=key");
    const today = day(Date.now());
    expect(report.group_by).toBe("key");
    expect(report.to).toBe(today);
    expect(report.from).toBe(day(Date.now() - 29 * 86_400_000));
    expect(withoutMedian(report.rows)).toEqual(sums(records, (r) => r.api_key_id));
    expect(report.rows).toHaveLength(2);
    // team A's three answers: max_tokens 3 + 5 + 8 tokens out; team B's error counted as one
    expect(report.rows.map((r) => r.tokens_out).sort((a, b) => a - b)).toEqual([15, 16]);
    expect(report.rows.map((r) => r.errors).sort()).toEqual([0, 1]);
    for (const r of report.rows) expect(r.median_latency_ms).toEqual(expect.any(Number));
  });

  test("per model, per user and per day", async () => {
    expect(withoutMedian((await usage("?group_by=model")).rows)).toEqual(sums(records, (r) => r.model));
    expect((await usage("?group_by=model")).rows.map((r) => [r.group, r.requests])).toEqual([
      ["no-such-model", 1],
      [MODEL, 5],
    ]);
    expect(withoutMedian((await usage("?group_by=user")).rows)).toEqual(sums(records, (r) => r.user_id));
    const days = await usage("?group_by=day");
    expect(withoutMedian(days.rows)).toEqual(sums(records, (r) => day(r.ts)));
    // a range without those days has no rows
    expect((await usage("?group_by=day&from=2020-01-01&to=2020-12-31")).rows).toEqual([]);
  });

  test("as CSV: a header, then the same rows", async () => {
    const res = await admin.get("/api/usage?group_by=key&format=csv");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(res.headers.get("content-disposition")).toMatch(/attachment; filename="usage-by-key-.*\.csv"/);
    const text = await res.text();
    expect(text.split("\n")[0]).toBe("group,requests,errors,tokens_in,tokens_out,median_latency_ms");
    const parsed = parseCsv(text, { columns: true }) as Array<Record<string, string>>;
    const json = (await usage("?group_by=key")).rows;
    expect(parsed).toEqual(
      json.map((r) => ({
        group: r.group ?? "",
        requests: String(r.requests),
        errors: String(r.errors),
        tokens_in: String(r.tokens_in),
        tokens_out: String(r.tokens_out),
        median_latency_ms: r.median_latency_ms === null ? "" : String(r.median_latency_ms),
      })),
    );
  });

  test("bad queries are 400s naming the field", async () => {
    const cases: Array<[string, string]> = [
      ["group_by=team", "group_by"],
      ["from=2026-02-30", "from"],
      ["to=tomorrow", "to"],
      ["from=2026-03-02&to=2026-03-01", "from"],
      ["from=2000-01-01&to=2026-01-01", "from"],
      ["format=xml", "format"],
    ];
    for (const [query, param] of cases) {
      const r = await admin.answer("GET", `/api/usage?${query}`);
      expect({ query, status: r.status, param: r.body?.error?.param }).toEqual({ query, status: 400, param });
    }
  });

  test("a viewer sees only the usage of their own key; no login, no usage", async () => {
    const mine = records.filter((r) => r.user_id === viewerId);
    expect(mine).toHaveLength(3);
    const byKey = await usage("?group_by=key", viewer);
    expect(withoutMedian(byKey.rows)).toEqual(sums(mine, (r) => r.api_key_id));
    expect(byKey.rows).toHaveLength(1);
    expect((await usage("?group_by=user", viewer)).rows.map((r) => r.group)).toEqual([viewerId]);
    expect((await routerClient(router.url).answer("GET", "/api/usage")).status).toBe(401);
  });
});
