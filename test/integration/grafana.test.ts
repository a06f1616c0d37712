/**
 * The Grafana dashboard and the Prometheus alert rules in docs/grafana query
 * only series a real router exports: a router with a simulated model, one
 * node slot (so a request waits in the queue), a stand-in nvidia-smi (so the
 * node reports a GPU) and an OpenAI stand-in (cloud calls) serves a few
 * requests; then every metric name and label each PromQL expression uses
 * must be in its /metrics.
 */
import fs from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, login, ROOT, startRouter, tempDir, type Proc } from "../helpers/procs";
import { OPENAI_TEST_KEY, startOpenAIStandIn, type StandIn } from "../helpers/standins/openai";
import { waitFor } from "../helpers/wait";

const DIR = path.join(ROOT, "docs/grafana");
const MODEL = "x";
const CLOUD_MODEL = "openai:gpt-4o-mini";
const METRICS_TOKEN = "scrape";
/** Series Prometheus records itself for every scrape target, not in any /metrics. */
const PROMETHEUS_OWN = new Set(["up"]);
/** Labels Prometheus adds to every series it scrapes. */
const TARGET_LABELS = new Set(["job", "instance"]);

// PromQL words that are not metric names (functions are also known by the `(` after them)
const NOT_METRICS = new Set([
  ...["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"],
  ...["le", "inf", "nan", "label_values", "sum", "avg", "min", "max", "count", "topk", "bottomk", "quantile"],
  ...["rate", "irate", "increase", "delta", "histogram_quantile", "clamp_min", "clamp_max", "min_over_time"],
  ...["max_over_time", "avg_over_time", "absent", "vector", "scalar", "time"],
]);

/** The metric names a PromQL expression selects (not functions, keywords, labels, strings or Grafana variables). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings ("$model", "5..")
    .replace(/\{[^}]*\}/g, "{}") // label matchers
    .replace(/\[[^\]]*\]/g, "[]") // ranges and subqueries ([$__rate_interval], [5m])
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " "); // label lists
  const names = new Set<string>();
  // an identifier not inside a number (1e-9) or a variable, and not called as a function
  for (const m of bare.matchAll(/(?<![\w.$:])[a-zA-Z_:][\w:]*(?![\w:]|\s*\()/g)) {
    if (!NOT_METRICS.has(m[0].toLowerCase())) names.add(m[0]);
  }
  return [...names];
}

/** Each `metric{matchers}` of an expression with the label names its matchers use. */
function selectors(expr: string): Array<{ metric: string; labels: string[] }> {
  return [...expr.matchAll(/(?<![\w.$:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)].map((m) => ({
    metric: m[1],
    labels: [...m[2].replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]),
  }));
}

/** Prometheus text as sample name → the label names its samples carry. */
function parseScrape(text: string): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+\S+/);
    if (!m) continue;
    const labels = series.get(m[1]) ?? new Set<string>();
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"/g)) labels.add(l[1]);
    series.set(m[1], labels);
  }
  return series;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  definition?: string;
}
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const dashboard = JSON.parse(fs.readFileSync(path.join(DIR, "llm-router.json"), "utf8")) as {
  schemaVersion: number;
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: Variable[] };
};
const rules = parseYaml(fs.readFileSync(path.join(DIR, "alerts.yml"), "utf8")) as {
  groups: Array<{ name: string; rules: Rule[] }>;
};
const allPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const queryPanels = allPanels(dashboard.panels).filter((p) => p.type !== "row");
const alerts = rules.groups.flatMap((g) => g.rules);
/** Every PromQL expression, named by where it is. */
const exprs: Array<{ where: string; expr: string }> = [
  ...queryPanels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr })),
  ),
  ...alerts.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
];
/** The template variables' `label_values(metric, label)`. */
const labelValues = dashboard.templating.list.flatMap((v) => {
  const q = typeof v.query === "string" ? v.query : (v.query?.query ?? "");
  return [q, v.definition ?? ""].flatMap((s) =>
    [...s.matchAll(/label_values\(\s*([^,()]+?)\s*,\s*(\w+)\s*\)/g)].map((m) => ({
      where: `variable ${v.name}`,
      metric: m[1],
      label: m[2],
    })),
  );
});

test("metric names come out of PromQL without functions, labels, numbers or Grafana variables", () => {
  expect(
    metricNames(
      'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{model=~"$model",le="+Inf"}[$__rate_interval])))' +
        " / clamp_min(max by (node) (b_total), 1e-9) > 0.05 and on(node) group_left(gpu) c:recorded " +
        "or sum without (gpu) (irate(d[5m])) unless min_over_time(e[15m:1m]) offset 1h",
    ).sort(),
  ).toEqual(["a_bucket", "b_total", "c:recorded", "d", "e"]);
  expect(selectors('rate(a_bucket{model=~"$model", le="+Inf"}[1m]) / b{status!~"2.."}')).toEqual([
    { metric: "a_bucket", labels: ["model", "le"] },
    { metric: "b", labels: ["status"] },
  ]);
});

test("the dashboard is an importable Grafana dashboard on a chosen Prometheus, with node and model variables", () => {
  expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
  expect(dashboard.uid).toBe("llm-router");
  const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
  expect(vars.DS_PROMETHEUS).toMatchObject({ type: "datasource", query: "prometheus" });
  expect(labelValues.map((l) => `${l.where}:${l.label}`)).toEqual(
    expect.arrayContaining(["variable node:node", "variable model:model"]),
  );
  const ids = allPanels(dashboard.panels).map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(queryPanels.length).toBeGreaterThanOrEqual(10);
  for (const p of queryPanels) {
    expect({ panel: p.title, uid: p.datasource?.uid }).toEqual({ panel: p.title, uid: "${DS_PROMETHEUS}" });
    expect(p.targets?.length).toBeGreaterThan(0);
    expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    for (const t of p.targets!) {
      expect(t.datasource?.uid).toBe("${DS_PROMETHEUS}");
      // every query selects at least one metric, and its brackets balance
      expect({ panel: p.title, names: metricNames(t.expr).length > 0 }).toEqual({ panel: p.title, names: true });
      for (const [open, close] of ["()", "{}", "[]"]) {
        expect(t.expr.split(open).length).toBe(t.expr.split(close).length);
      }
    }
  }
});

test("alerts.yml holds Prometheus rule groups: node down, error rate, queue, each with a summary and description", () => {
  expect(rules.groups.length).toBeGreaterThan(0);
  for (const g of rules.groups) {
    expect(g.name).toEqual(expect.any(String));
    for (const r of g.rules) {
      expect(r).toMatchObject({
        alert: expect.stringMatching(/^\w+$/),
        expr: expect.any(String),
        labels: { severity: expect.stringMatching(/^(critical|warning|info)$/) },
        annotations: { summary: expect.any(String), description: expect.any(String) },
      });
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smh]$/);
    }
  }
  const uses = (metric: string) => alerts.filter((r) => metricNames(r.expr).includes(metric)).map((r) => r.alert);
  expect(uses("llm_router_node_up").length).toBeGreaterThan(0);
  const errorRate = alerts.find((r) => /status=~"5\.\."/.test(r.expr) && r.expr.includes("llm_router_requests_total"));
  expect(errorRate).toMatchObject({ for: "5m", expr: expect.stringMatching(/>\s*0\.05\s*$/) });
  expect(uses("llm_router_queue_length").length).toBeGreaterThan(0);
  expect(uses("llm_router_queue_wait_seconds_bucket").length).toBeGreaterThan(0);
});

describe("on a real router that served a few requests", () => {
  let router: { proc: Proc; url: string };
  let openai: StandIn;

  beforeAll(async () => {
    openai = await startOpenAIStandIn();
    const models = tempDir("grafana-models");
    fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "simulated");
    // the node's GPU stats come from nvidia-smi: a stand-in reports one GPU
    const bin = tempDir("grafana-bin");
    fs.writeFileSync(path.join(bin, "nvidia-smi"), "#!/bin/sh\necho 'Stand-in GPU, 42, 1024, 8192'\n", { mode: 0o755 });
    router = await startRouter("router", {
      PATH: `${bin}${path.delimiter}${process.env.PATH}`,
      LLM_NODE_MODELS_DIR: models,
      LLM_NODE_ENGINE: "instant",
      LLM_NODE_INSTANT_MS_PER_TOKEN: "5",
      LLM_NODE_PARALLEL: "1",
      OPENAI_API_KEY: OPENAI_TEST_KEY,
      OPENAI_BASE_URL: openai.url,
      LLM_ROUTER_METRICS_TOKEN: METRICS_TOKEN,
    });
    await router.proc.waitForOutput(/is online/);
    const admin = routerClient(router.url, { token: await login(router.url) });
    const user = routerClient(router.url, {
      key: await createKey(router.url),
      chat: { model: MODEL, max_tokens: 4, messages: [{ role: "user", content: "hi" }] },
    });
    await waitFor(async () => (await user.models()).some((m) => m.id === MODEL), { what: `${MODEL} served` });
    await serveAFew(admin, user);
  }, 90_000);

  afterAll(async () => {
    await router?.proc.stop();
    await openai?.close();
  });

  /** Requests that fill every series the dashboard reads: answered, refused, queued, streamed, cloud. */
  async function serveAFew(admin: RouterClient, user: RouterClient): Promise<void> {
    const ask = (body: Record<string, unknown> = {}) =>
      user.chat(body).then(async (r) => ({ status: r.status, text: await r.text() }));
    const hog = ask({ max_tokens: 300 }); // 1.5 s on the only slot
    await waitFor(async () => (await admin.nodes())[0]?.active_requests === 1, { what: "the slot taken" });
    const waiting = ask();
    await waitFor(async () => (await routerClient(router.url).json("GET", "/health")).body.queued_requests === 1, {
      what: "a request queued",
    });
    const answers = await Promise.all([
      hog,
      waiting,
      ask({ model: "nobody-serves-this" }),
      ask({ model: CLOUD_MODEL }),
      ask({ stream: true }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 404, 200, 200]);
  }

  async function scrape(): Promise<Map<string, Set<string>>> {
    const res = await routerClient(router.url, { token: METRICS_TOKEN }).get("/metrics");
    expect(res.status).toBe(200);
    return parseScrape(await res.text());
  }

  /** What of the dashboard's and the rules' queries the scrape lacks, one line each. */
  function missingFrom(series: Map<string, Set<string>>): string[] {
    const missing: string[] = [];
    for (const { where, expr } of exprs) {
      for (const name of metricNames(expr)) {
        if (!series.has(name) && !PROMETHEUS_OWN.has(name)) missing.push(`${where}: ${name}`);
      }
      for (const { metric, labels } of selectors(expr)) {
        if (PROMETHEUS_OWN.has(metric)) continue;
        for (const l of labels) {
          if (series.has(metric) && !series.get(metric)!.has(l) && !TARGET_LABELS.has(l)) {
            missing.push(`${where}: label ${l} of ${metric}`);
          }
        }
      }
    }
    for (const { where, metric, label } of labelValues) {
      if (!series.get(metric)?.has(label)) missing.push(`${where}: ${metric} with label ${label}`);
    }
    return missing;
  }

  test("every metric and label the dashboard and the alerts query is in a real router's /metrics", async () => {
    expect(exprs.length).toBeGreaterThan(0);
    // the node's GPU stats arrive with a heartbeat: wait for a scrape that has everything, or show what it lacks
    const series = await waitFor(
      async () => {
        const s = await scrape();
        return missingFrom(s).length === 0 ? s : null;
      },
      { what: "a scrape with every series queried", timeoutMs: 15_000 },
    ).catch(() => scrape());
    expect(missingFrom(series)).toEqual([]);
    // histograms are read through their buckets: the router exports no _sum or _count for them
    expect(series.has("llm_router_request_duration_seconds_bucket")).toBe(true);
    expect(exprs.filter((e) => /_(sum|count)\b/.test(e.expr))).toEqual([]);
  });
});
