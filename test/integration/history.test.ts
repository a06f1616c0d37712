/**
 * Request history and metrics on a real router (all services in one process,
 * two tiny llama models): every request is recorded, filters and text search
 * select exactly, exports parse back, records survive a restart, and /metrics
 * is Prometheus text that moves with traffic.
 */
import fs from "node:fs";
import path from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import parsePrometheus from "parse-prometheus-text-format";
import { routerClient } from "../helpers/client";
import { ADMIN_PASSWORD, createKey, login, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

interface Rec {
  id: string;
  ts: number;
  endpoint: string;
  kind: string;
  stream: boolean;
  model: string | null;
  node_id: string | null;
  client_ip: string;
  api_key_id: string | null;
  user_id: string | null;
  request_body: Record<string, unknown>;
  response_body: Record<string, unknown> | null;
  status: number;
  error: string | null;
  ttft_ms: number | null;
  tokens_in: number | null;
  tokens_out: number | null;
  nodes_tried: string[];
}
interface Page {
  records: Rec[];
  total_count: number;
  page: number;
  per_page: number;
}

const METRICS_TOKEN = "metrics-scrape-token-for-tests";
let router: { proc: Proc; url: string };
let env: Record<string, string>;
let key: string;
let token: string;
const TRICKY = `He said, "hi"\nthen left; commas, 'quotes', \\backslash and ümlaut`;

/** With the API key, on the router running now. */
const user = () => routerClient(router.url, { key });
/** Without a credential. */
const anon = () => routerClient(router.url);
/** A GET read whole (`status`, `text`, `body`), with the admin's login unless told otherwise. */
const get = (p: string, auth = token) => routerClient(router.url, { token: auth }).answer("GET", p);

async function list(query: string): Promise<Page> {
  const r = await routerClient(router.url, { token }).json<Page>("GET", `/api/dashboard/request-responses?${query}`);
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.body;
}

const ids = (p: Page) => p.records.map((r) => r.id).sort();
const waitForRecords = (n: number) =>
  waitFor(async () => (await list("")).total_count >= n, { what: `${n} history records` });

/** The records the seeded requests made, by name. */
const seeded: Record<string, Rec> = {};

/** Until the clock is past the millisecond it reads now. */
async function nextMs(): Promise<void> {
  const now = Date.now();
  while (Date.now() <= now) await new Promise((r) => setImmediate(r));
}

beforeAll(async () => {
  const models = tempDir("history-models");
  writeModel(models, "m-a");
  writeModel(models, "m-b", { seed: 7 });
  env = {
    LLM_NODE_MODELS_DIR: models,
    LLM_ROUTER_DATA_DIR: tempDir("history-data"),
    LLM_ROUTER_METRICS_TOKEN: METRICS_TOKEN,
    LLM_ROUTER_TRUSTED_PROXIES: "loopback",
  };
  router = await startRouter("router", env);
  await router.proc.waitForOutput(/is online/);
  key = await createKey(router.url);
  token = await login(router.url);

  // six requests of every kind, sent one after another, each in a later millisecond than the one before
  // (records are listed by start time, to the ms): their order is known
  const sent: Array<[string, Response]> = [];
  sent.push([
    "tricky",
    await user().post("/v1/chat/completions", {
      model: "m-a",
      messages: [{ role: "user", content: TRICKY }],
      max_tokens: 4,
    }),
  ]);
  await nextMs();
  sent.push([
    "stream",
    await user().post("/v1/chat/completions", {
      model: "m-b",
      messages: [{ role: "user", content: "stream me" }],
      max_tokens: 5,
      stream: true,
    }),
  ]);
  await nextMs();
  sent.push([
    "needle",
    await user().post("/v1/completions", { model: "m-a", prompt: "find the Needle-42 here", max_tokens: 3 }),
  ]);
  await nextMs();
  sent.push([
    "ghost",
    await user().post("/v1/chat/completions", { model: "ghost", messages: [{ role: "user", content: "x" }] }),
  ]);
  await nextMs();
  sent.push(["embed", await user().post("/v1/embeddings", { model: "m-b", input: "vectors" })]);
  await nextMs();
  sent.push([
    "legacy",
    await user().post(
      "/api/generate",
      { model: "m-a", prompt: "legacy" },
      { headers: { "x-forwarded-for": "203.0.113.7" } },
    ),
  ]);
  const streamed = await sent[1][1].text();
  for (const [, res] of sent) if (!res.bodyUsed) await res.text();
  expect(sent.map(([, r]) => r.status)).toEqual([200, 200, 200, 404, 200, 200]);
  await waitForRecords(6);
  const all = (await list("per_page=10")).records.reverse();
  sent.forEach(([name], i) => (seeded[name] = all[i]));
  seeded.stream.response_body!.__streamed = streamed;
}, 90_000);

afterAll(async () => {
  await router?.proc.stop();
});

describe("records", () => {
  test("one per request, newest first, in the seed's list shape", async () => {
    const page = await list("");
    expect(page).toMatchObject({ total_count: 6, page: 1, per_page: 50 });
    expect(page.records.map((r) => r.endpoint)).toEqual([
      "/api/generate",
      "/v1/embeddings",
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/chat/completions",
      "/v1/chat/completions",
    ]);
    expect(seeded.tricky).toMatchObject({
      kind: "chat",
      model: "m-a",
      status: 200,
      stream: false,
      request_body: { messages: [{ role: "user", content: TRICKY }] },
      tokens_out: 4,
      nodes_tried: [seeded.tricky.node_id],
      client_ip: "127.0.0.1",
      user_id: expect.any(String),
    });
    const me = (await get("/api/auth/me")).body as { id: string };
    expect(seeded.tricky.user_id).toBe(me.id);
    expect(seeded.ghost).toMatchObject({ status: 404, model: "ghost", node_id: null });
    expect(seeded.ghost.error).toMatch(/ghost/);
    expect(seeded.embed).toMatchObject({ kind: "embedding", tokens_in: expect.any(Number) });
    expect(seeded.legacy).toMatchObject({ kind: "legacy", client_ip: "203.0.113.7" });
  });

  test("a streamed request's record holds the assembled text, finish reason and usage", () => {
    const s = seeded.stream;
    const text = (s.response_body!.__streamed as string)
      .split("\n\n")
      .filter((e) => e.startsWith("data: {"))
      .map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? "")
      .join("");
    expect(text).toHaveLength(5);
    expect(s.response_body).toMatchObject({ text, finish_reason: "length", usage: { completion_tokens: 5 } });
    expect(s).toMatchObject({ stream: true, tokens_out: 5, tokens_in: expect.any(Number) });
    expect(s.ttft_ms).toBeGreaterThan(0);
    // the client did not ask for usage: it got no usage chunk
    expect(s.response_body!.__streamed).not.toContain('"usage"');
  });

  test("the detail of one record, and 404 for an unknown id", async () => {
    const one = await get(`/api/dashboard/request-responses/${seeded.needle.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: seeded.needle.id, request_body: { prompt: "find the Needle-42 here" } });
    const none = await get("/api/dashboard/request-responses/req-nope");
    expect(none.status).toBe(404);
  });

  test("no credential is stored: not the API key, not the login token", async () => {
    const file = fs.readFileSync(path.join(env.LLM_ROUTER_DATA_DIR, "history.db"), "utf8");
    expect(file).toContain(seeded.tricky.id);
    expect(file).not.toContain(key);
    expect(file).not.toContain(token);
    expect(file.toLowerCase()).not.toContain("authorization");
  });
});

describe("filters", () => {
  test.each([
    ["model=m-a", ["tricky", "needle", "legacy"]],
    ["model=m-b", ["stream", "embed"]],
    ["status=404", ["ghost"]],
    ["status=error", ["ghost"]],
    ["status=success", ["tricky", "stream", "needle", "embed", "legacy"]],
    ["kind=legacy", ["legacy"]],
    ["kind=embedding", ["embed"]],
    ["q=needle-42", ["needle"]],
    ["q=NEEDLE", ["needle"]],
    ["q=%22hi%5C%22", ["tricky"]],
    ["model=m-a&q=legacy", ["legacy"]],
    ["q=.*", []],
    ["q=%24where", []],
  ])("%s selects exactly its records", async (query, names) => {
    const page = await list(query);
    expect(ids(page)).toEqual(names.map((n) => seeded[n].id).sort());
    expect(page.total_count).toBe(names.length);
  });

  test("node, from and to", async () => {
    expect((await list(`node=${seeded.tricky.node_id}`)).total_count).toBe(5);
    const from = new Date(seeded.needle.ts).toISOString();
    const to = new Date(seeded.embed.ts).toISOString();
    expect(ids(await list(`from=${from}&to=${to}`))).toEqual(
      ["needle", "ghost", "embed"].map((n) => seeded[n].id).sort(),
    );
  });

  test("pages, and per_page is capped", async () => {
    const p2 = await list("per_page=4&page=2");
    expect(p2).toMatchObject({ total_count: 6, page: 2, per_page: 4 });
    expect(p2.records.map((r) => r.id)).toEqual([seeded.stream.id, seeded.tricky.id]);
    expect((await list("per_page=100000")).per_page).toBe(200);
  });

  test.each([
    "model[$ne]=x",
    "status[$gt]=0",
    "node[$regex]=.*",
    "from=yesterday",
    "to=2026-13-45",
    "page=-1",
    "per_page=0",
    "kind=everything",
    "status=999",
    "model=a&model=b",
  ])("%s is a 400, not a store operator", async (query) => {
    const r = await get(`/api/dashboard/request-responses?${query}`);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: expect.any(String) });
  });

  test("viewers log in to read history; API keys do not open it", async () => {
    expect((await get("/api/dashboard/request-responses", key)).status).toBe(401);
    expect((await anon().get("/api/dashboard/request-responses")).status).toBe(401);
  });
});

describe("export", () => {
  test("CSV parses back identically, bodies with commas, quotes and newlines included", async () => {
    const r = await get("/api/dashboard/request-responses/export?format=csv");
    expect(r.status).toBe(200);
    const rows = parseCsv(r.text, { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(6);
    const tricky = rows.find((row) => row.id === seeded.tricky.id)!;
    expect(JSON.parse(tricky.request_body)).toEqual(seeded.tricky.request_body);
    expect(JSON.parse(tricky.response_body)).toEqual(seeded.tricky.response_body);
    expect(Number(tricky.status)).toBe(200);
    expect(tricky.nodes_tried).toBe(seeded.tricky.nodes_tried.join(" "));
  });

  test("JSON is a valid array and takes the same filters", async () => {
    const all = await get("/api/dashboard/request-responses/export?format=json");
    expect(all.status).toBe(200);
    expect((all.body as Rec[]).map((x) => x.id).sort()).toEqual(
      Object.values(seeded)
        .map((x) => x.id)
        .sort(),
    );
    const some = await get("/api/dashboard/request-responses/export?model=m-b");
    expect((some.body as Rec[]).map((x) => x.id).sort()).toEqual([seeded.stream.id, seeded.embed.id].sort());
    expect((await get("/api/dashboard/request-responses/export?format=xml")).status).toBe(400);
  });
});

describe("stats and overview", () => {
  test("per-minute counts of the last hour, percentiles and tokens/s", async () => {
    const s = (await get("/api/dashboard/stats")).body;
    expect(s.per_minute).toHaveLength(60);
    const sum = (k: "success" | "error") => s.per_minute.reduce((a: number, m: Record<string, number>) => a + m[k], 0);
    expect([sum("success"), sum("error")]).toEqual([5, 1]);
    expect(s.latency_ms.p50).toBeGreaterThan(0);
    expect(s.tokens_per_second).toBeGreaterThan(0);
  });

  test("the overview the dashboard's cards need", async () => {
    const o = (await get("/api/dashboard/overview")).body;
    expect(o).toMatchObject({
      nodes: { total: 1, online: 1, offline: 0 },
      models: 2,
      queued_requests: 0,
      last_hour: { total_requests: 6, error_requests: 1 },
    });
  });
});

describe("metrics", () => {
  const scrape = async () => {
    const r = await get("/metrics", METRICS_TOKEN);
    expect(r.status).toBe(200);
    return parsePrometheus(r.text);
  };
  const total = (fams: ReturnType<typeof parsePrometheus>, name: string, labels: Record<string, string> = {}) =>
    (fams.find((f) => f.name === name)?.metrics ?? [])
      .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
      .reduce((a, m) => a + Number(m.value ?? m.count ?? 0), 0);

  test("Prometheus text whose counters move with traffic", async () => {
    const before = await scrape();
    expect(total(before, "llm_router_requests_total", { model: "m-a", status: "200" })).toBe(3);
    expect(total(before, "llm_router_requests_total", { status: "404" })).toBe(1);
    expect(before.find((f) => f.name === "llm_router_request_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(total(before, "llm_router_node_up")).toBe(1);
    // Moleculer's own metrics are there too
    expect(before.some((f) => f.name.startsWith("moleculer_"))).toBe(true);

    await (
      await user().post("/v1/chat/completions", {
        model: "m-a",
        messages: [{ role: "user", content: "x" }],
        max_tokens: 2,
      })
    ).text();
    const after = await scrape();
    expect(total(after, "llm_router_requests_total", { model: "m-a", status: "200" })).toBe(4);
    expect(total(after, "llm_router_tokens_out_total", { model: "m-a" })).toBe(
      total(before, "llm_router_tokens_out_total", { model: "m-a" }) + 2,
    );
  });

  test("behind the metrics token or a login; /metrics/cloud has only cloud metrics", async () => {
    expect((await anon().get("/metrics")).status).toBe(401);
    expect((await get("/metrics", "wrong-token")).status).toBe(401);
    expect((await get("/metrics", key)).status).toBe(401);
    expect((await get("/metrics", token)).status).toBe(200);
    const cloud = await get("/metrics/cloud", METRICS_TOKEN);
    expect(cloud.status).toBe(200);
    expect(cloud.text).not.toMatch(/llm_router_|moleculer_/);
  });
});

describe("a restart", () => {
  test("keeps every record, including one answered just before a clean shutdown", async () => {
    // 6 seeded + 1 from the metrics test
    await waitForRecords(7);
    const before = (await list("")).total_count;
    const last = await user().post("/v1/chat/completions", {
      model: "m-b",
      messages: [{ role: "user", content: "last words" }],
      max_tokens: 2,
    });
    expect(last.status).toBe(200);
    await last.text();
    // stopped at once: the record may still be in the batch buffer, and must be written on stop
    await router.proc.stop();
    router = await startRouter("router-again", env);
    token = await login(router.url);
    const page = await list("q=last%20words");
    expect(page.total_count).toBe(1);
    expect((await list("")).total_count).toBe(before + 1);
  });
});

describe("bodies a store would refuse", () => {
  test("a body whose keys a store refuses ($ref, dotted names) is kept whole", async () => {
    const schema = { $schema: "https://json-schema.org/draft/2020-12/schema", $defs: { x: { type: "string" } } };
    const body = {
      model: "m-a",
      messages: [{ role: "user", content: "schema-keys" }],
      max_tokens: 2,
      tools: [
        {
          type: "function",
          function: { name: "f", parameters: { ...schema, properties: { "a.b": { $ref: "#/$defs/x" } } } },
        },
      ],
    };
    const res = await user().post("/v1/chat/completions", body);
    expect(res.status).toBe(200);
    await res.text();
    await waitFor(async () => (await list("q=schema-keys")).total_count === 1, { what: "the record with $-keys" });
    const [rec] = (await list("q=schema-keys")).records;
    expect(rec.request_body).toEqual(body);
  });
});

describe("behind a trusted proxy", () => {
  // last in this file: it spends one forwarded address's failed logins
  test("failed logins count against the client's forwarded address, not the proxy's", async () => {
    const attempt = (ip: string, i: number) =>
      anon().post(
        "/api/auth/login",
        { username: `nobody-${ip}-${i}`, password: "wrong-password" },
        { headers: { "x-forwarded-for": ip } },
      );
    let status = 0;
    for (let i = 0; i < 40 && status !== 429; i++) status = (await attempt("203.0.113.50", i)).status;
    expect(status).toBe(429);
    // another client behind the same proxy is not locked out
    expect((await attempt("203.0.113.51", 0)).status).toBe(401);
    expect((await anon().post("/api/auth/login", { username: "admin", password: ADMIN_PASSWORD })).status).toBe(200);
  });
});
