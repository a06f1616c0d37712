/**
 * The dashboard's Usage page in a real browser (Debian's Chromium driven by
 * playwright-core) against one router process with an embedded
 * instant-engine node: after chats with two API keys, the page draws tokens
 * per day as a chart, lists both keys by name with their request counts,
 * switches the table to models, and downloads the current grouping as CSV.
 * Screenshots go to test/artifacts/dashboard/.
 */
import fs from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { ADMIN_PASSWORD, createKey, login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { routerClient, type RouterClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";
import { launchChromium, logIn, shot } from "../helpers/dashboard";

const MODEL = "us-model";
const SENT = { "usage-alpha": 3, "usage-beta": 2 };

let router: { proc: Proc; url: string };
let api: RouterClient;
let browser: Browser;
let page: Page;
let keyIds: Record<string, string>;

interface Row {
  group: string | null;
  requests: number;
}

const usage = async (groupBy: string): Promise<Row[]> =>
  ((await api.json("GET", `/api/usage?group_by=${groupBy}`)).body as { rows: Row[] }).rows;

beforeAll(async () => {
  const models = tempDir("dash-usage");
  fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "instant: never loaded");
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_ROUTER_DATA_DIR: tempDir("dash-usage-data"),
  });
  api = routerClient(router.url, { token: await login(router.url) });
  await waitFor(async () => (await api.nodes()).some((n) => n.models.includes(MODEL)), {
    timeoutMs: 30_000,
    what: "the node's model in the table",
  });
  for (const [name, count] of Object.entries(SENT)) {
    const client = routerClient(router.url, { key: await createKey(router.url, { name }) });
    for (let i = 0; i < count; i++) {
      const res = await client.chat({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
      await res.text();
      expect(res.status).toBe(200);
    }
  }
  const keys = (await api.json("GET", "/api/api-keys")).body as Array<{ id: string; name: string }>;
  keyIds = Object.fromEntries(keys.map((k) => [k.name, k.id]));
  // the roll-ups are flushed every few seconds: until they hold every request
  await waitFor(async () => (await usage("key")).reduce((a, r) => a + r.requests, 0) === 5, {
    timeoutMs: 30_000,
    what: "the usage roll-ups to count all 5 requests",
  });
  browser = await launchChromium();
  ({ page } = await logIn(browser, router.url, "admin", ADMIN_PASSWORD));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await router?.proc.stop();
});

test("the chart is drawn, the table lists both keys by name with their requests, and switches to models", async () => {
  await page.getByRole("link", { name: "Usage" }).click();
  await page.getByRole("heading", { name: "Usage" }).waitFor();
  const table = page.locator("table[aria-label='Usage']");
  for (const [name, count] of Object.entries(SENT)) {
    const row = table.locator(`tr[data-group="${keyIds[name]}"]`);
    await row.waitFor();
    await expect(row.locator("td").nth(0).textContent()).resolves.toBe(name);
    await expect(row.locator("td").nth(1).textContent()).resolves.toBe(String(count));
  }

  // the chart: a canvas with today's tokens in its data
  const find = `document.querySelector("canvas[aria-label='Tokens per day']")`;
  await page.waitForFunction(`Number(${find}?.dataset.points) > 0`);
  await expect(page.evaluate(`${find}.width > 0 && ${find}.height > 0`)).resolves.toBe(true);
  // Chart.js's own data: the range's tokens, in and out, as the API counts them
  const drawn = (await page.evaluate(
    `window.Chart.getChart(${find}).data.datasets.map((d) => d.data.reduce((a, v) => a + v, 0))`,
  )) as number[];
  const days = (await api.json("GET", "/api/usage?group_by=day")).body as {
    rows: Array<{ tokens_in: number; tokens_out: number }>;
  };
  expect(drawn).toEqual([
    days.rows.reduce((a, r) => a + r.tokens_in, 0),
    days.rows.reduce((a, r) => a + r.tokens_out, 0),
  ]);
  expect(drawn[0] + drawn[1]).toBeGreaterThan(0);
  await shot(page, "usage");

  await page.getByLabel("Group by").selectOption("model");
  const modelRow = table.locator(`tr[data-group="${MODEL}"]`);
  await modelRow.waitFor();
  await expect(modelRow.locator("td").nth(0).textContent()).resolves.toBe(MODEL);
  await expect(modelRow.locator("td").nth(1).textContent()).resolves.toBe("5");
  await expect(table.locator("th").first().textContent()).resolves.toBe("Model");
}, 60_000);

test("Download CSV gives the current grouping and range as CSV with its header", async () => {
  await page.goto(`${router.url}/dashboard/#/usage`);
  await page.getByLabel("Group by").selectOption("key");
  await page.locator(`tr[data-group="${keyIds["usage-alpha"]}"]`).waitFor();
  const link = page.getByRole("link", { name: "Download CSV" });
  const href = await link.getAttribute("href");
  expect(href).toMatch(/^\/api\/usage\?.*group_by=key.*format=csv/);

  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  expect(download.suggestedFilename()).toMatch(/^usage-key-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
  const file = await download.path();
  const text = fs.readFileSync(file, "utf8");
  const lines = text.trim().split(/\r?\n/);
  expect(lines[0]).toBe("group,requests,errors,tokens_in,tokens_out,median_latency_ms");
  expect(lines.some((l) => l.startsWith(`${keyIds["usage-alpha"]},3,`))).toBe(true);
  expect(lines.some((l) => l.startsWith(`${keyIds["usage-beta"]},2,`))).toBe(true);

  // the link's address itself, with the login token, is the same CSV
  const r = await api.answer("GET", href!);
  expect(r.status).toBe(200);
  expect(r.text.trim().split(/\r?\n/)[0]).toBe(lines[0]);
}, 60_000);
