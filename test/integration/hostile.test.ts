/**
 * Hostile input against a started router (the embedded default, real
 * llama.cpp on a generated model): the corpus in test/fixtures/hostile/ sent
 * to every route with every method, then the router must still be well —
 * no 5xx, no hang, memory and /metrics bounded, every accepted inference
 * request in history, a CSV export safe to open, and a normal chat answered.
 */
import fs from "node:fs";
import { parse as parseCsv } from "csv-parse/sync";
import { methodsFor, ROUTES, type RouteRule } from "../../lib/auth/routes";
import { BODIES, CASES, METHODS, type Credential, type HostileBody } from "../fixtures/hostile/corpus";
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, login, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-hostile";
let router: { proc: Proc; url: string };
let key: string;
let admin: string;

/** Every answer the test got: route, what was sent, status, error code. */
const answers: Array<{ what: string; status: number; code: string | null }> = [];
/** Inference requests that got past the gate and the body parser: each must be in history. */
let accepted = 0;

const INFERENCE = new Set(
  ROUTES.filter((r) => r.access === "apiKey" && r.method === "POST")
    .map((r) => r.path)
    .concat("/api/playground/chat", "/api/playground/responses"),
);
/** Answers given before an inference handler runs (the gate, the body parser, the method table). */
const BEFORE_HANDLER = new Set([
  "invalid_body",
  "invalid_json",
  "request_too_large",
  "unsupported_media_type",
  "missing_api_key",
  "invalid_api_key",
  "method_not_allowed",
  "missing_token",
]);

function rssMiB(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : 0;
}

/** A concrete path for a route of the table (made-up ids: nothing real is changed). */
const concrete = (p: string) => p.replace(/:[a-z]+/g, "no-such-id").replace(/\*[a-z]+/g, "no/such");

/** The router, with the credential a request goes with. */
function clientFor(as: Credential): RouterClient {
  if (as === "apiKey") return routerClient(router.url, { key });
  if (as === "admin") return routerClient(router.url, { token: admin });
  return routerClient(router.url);
}

function credentialFor(r: RouteRule): Credential {
  if (r.access === "apiKey") return "apiKey";
  if (r.access === "public") return "none";
  return "admin";
}

async function send(
  what: string,
  method: string,
  path: string,
  as: Credential,
  body?: HostileBody,
): Promise<{ status: number; code: string | null; param: string | null; text: string }> {
  const res = await clientFor(as).request(
    method,
    path,
    body && method !== "GET" && method !== "HEAD" ? body.body : undefined,
    {
      // the corpus's headers never carry a credential: the one of `as` is the one sent
      headers: { "content-type": "application/json", ...(body?.headers ?? {}) },
      // a handler that opened an event stream or hung would show up here
      signal: AbortSignal.timeout(15_000),
    },
  );
  const text = await res.text();
  let code: string | null = null;
  let param: string | null = null;
  try {
    const err = (JSON.parse(text) as { error?: { code?: string; param?: string } }).error;
    code = err?.code ?? null;
    param = err?.param ?? null;
  } catch {
    // not JSON: a 204, a file, a stream
  }
  answers.push({ what: `${method} ${path} (${what})`, status: res.status, code });
  if (method === "POST" && INFERENCE.has(path) && res.status !== 401 && !BEFORE_HANDLER.has(code ?? "")) accepted++;
  return { status: res.status, code, param, text };
}

const asBody = (json: unknown): HostileBody => ({ name: "json", body: JSON.stringify(json) });
const withModel = (v: unknown) => JSON.parse(JSON.stringify(v).replaceAll('"MODEL"', JSON.stringify(MODEL))) as unknown;

beforeAll(async () => {
  const models = tempDir("models");
  writeModel(models, MODEL);
  router = await startRouter("router", { LLM_NODE_MODELS_DIR: models, LLM_NODE_PARALLEL: "2" });
  await router.proc.waitForOutput(/Node \S+ \(\S+\) is online/);
  key = await createKey(router.url);
  admin = await login(router.url);
}, 90_000);

afterAll(async () => {
  await router?.proc.stop();
});

describe("hostile input against a started router", () => {
  let rssBefore = 0;

  test("the corpus's cases get the answers they must", async () => {
    rssBefore = rssMiB(router.proc.child.pid!);
    for (const c of CASES) {
      const body = c.raw ?? (c.json === undefined ? undefined : asBody(withModel(c.json)));
      const r = await send(c.name, c.method, c.path, c.as, body);
      const got = {
        status: r.status,
        ...(c.expect.code ? { code: r.code } : {}),
        ...(c.expect.param ? { param: r.param } : {}),
      };
      expect({ case: c.name, ...got }).toEqual({ case: c.name, ...c.expect });
      if (c.method === "OPTIONS" || c.method === "HEAD") expect(r.text).toBe("");
    }
  }, 120_000);

  test("every body of the corpus on every route that takes one: a 4xx or a success, never a 5xx", async () => {
    for (const r of ROUTES.filter((x) => x.method === "POST" || x.method === "PUT")) {
      // logging out would end the test's own login
      if (r.path === "/api/auth/logout") continue;
      for (const b of BODIES) await send(b.name, r.method, concrete(r.path), credentialFor(r), b);
    }
    const bad = answers.filter((a) => a.status >= 500);
    expect(bad).toEqual([]);
  }, 300_000);

  test("every method on every route: the table's own, OPTIONS with Allow, 405 for the rest, never a handler for a method it lacks", async () => {
    for (const r of ROUTES) {
      if (r.path === "/api/auth/logout") continue;
      const path = concrete(r.path);
      for (const m of METHODS) {
        if (m === r.method) continue;
        // another route of the table may take this method on the same path (DELETE /api/models/:id matches /api/models/register)
        if (methodsFor(path).has(m as RouteRule["method"])) continue;
        const res = await send(`method ${m}`, m, path, credentialFor(r));
        if (m === "OPTIONS") {
          expect({ path, m, status: res.status, text: res.text }).toEqual({ path, m, status: 204, text: "" });
        } else if (m === "HEAD" && r.method === "GET" && r.access === "public") {
          expect({ path, m, text: res.text }).toEqual({ path, m, text: "" });
        } else {
          expect({ path, m, status: res.status }).toEqual({ path, m, status: 405 });
        }
      }
    }
  }, 120_000);

  test("thirty 2 MiB model names and a hundred made-up ones leave memory and /metrics small", async () => {
    for (let i = 0; i < 30; i++) {
      const model = `${i}`.padEnd(2 << 20, "m");
      await send(
        "2 MiB model",
        "POST",
        "/v1/chat/completions",
        "apiKey",
        asBody({ model, messages: [{ role: "user", content: "x" }] }),
      );
    }
    for (let i = 0; i < 100; i++) {
      await send(
        "made-up model",
        "POST",
        "/v1/chat/completions",
        "apiKey",
        asBody({ model: `nope-${i}`, messages: [{ role: "user", content: "x" }] }),
      );
    }
    const metrics = await clientFor("admin").get("/metrics");
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text.length).toBeLessThan(300_000);
    expect(text).not.toMatch(/model="nope-/);
    expect(text).toMatch(/model="unknown"/);
    // well under the ~1.4 GiB the 2 MiB names once took, and not left behind
    expect(rssMiB(router.proc.child.pid!) - rssBefore).toBeLessThan(400);
  }, 120_000);

  test("every inference request that was accepted is in history, and nothing logged a failure", async () => {
    const total = async () => {
      const res = await clientFor("admin").get("/api/dashboard/request-responses?per_page=1");
      return ((await res.json()) as { total_count: number }).total_count;
    };
    await waitFor(async () => (await total()) >= accepted, { what: `${accepted} history records` });
    expect(await total()).toBe(accepted);
    expect(router.proc.output).not.toMatch(/recording a request failed|Maximum call stack|TypeError|Request error!/);
  }, 60_000);

  test("the CSV export is safe to open in a spreadsheet", async () => {
    // a key whose name is a formula, and requests whose model is one
    for (const name of ["=CMD|' /C calc'!A0", "\t=1+1", "@SUM(1)"]) {
      const res = await clientFor("admin").post("/api/api-keys", { name });
      const evil = routerClient(router.url, { key: ((await res.json()) as { key: string }).key });
      for (const model of ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "\r=1"]) {
        await evil.chat({ model, messages: [{ role: "user", content: "=1+1" }] });
      }
    }
    const csv = await waitFor(async () => {
      const res = await clientFor("admin").get("/api/dashboard/request-responses/export?format=csv&q=hyperlink");
      const text = await res.text();
      return text.split("\n").length > 3 ? text : null;
    });
    const rows = parseCsv(csv, { columns: true, relax_column_count: true }) as Array<Record<string, string>>;
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) for (const v of Object.values(row)) expect(v).not.toMatch(/^[=+\-@\t\r]/);
  }, 60_000);

  test("after all that, a normal chat is answered", async () => {
    const r = await send(
      "normal chat",
      "POST",
      "/v1/chat/completions",
      "apiKey",
      asBody({ model: MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 3 }),
    );
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ object: "chat.completion", model: MODEL });
  }, 60_000);
});
