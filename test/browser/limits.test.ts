/**
 * Limits, priority and scopes in the dashboard, in a real browser (Debian's
 * Chromium driven by playwright-core) against one router process with an
 * embedded instant-engine node: an admin creates a key with a tokens-per-
 * minute limit, a daily budget and scopes through the form, and the table and
 * the API agree; a bad value is refused with the router's message under the
 * field it names and nothing is made; an admin sets a user's daily budget on
 * the Users page; a viewer creates a key for themselves and revokes it.
 * Screenshots go to test/artifacts/dashboard/.
 */
import fs from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { ADMIN_PASSWORD, login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { routerClient, type RouterClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";
import { launchChromium, logIn, shot } from "../helpers/dashboard";

const MODEL = "lim-model";
const VIEWER = { username: "vera", password: "viewer-password-4711" };

let router: { proc: Proc; url: string };
let api: RouterClient;
let browser: Browser;
let page: Page;
let viewerId: string;

interface Key {
  id: string;
  name: string;
  owner: string;
  rate_limit_rpm: number | null;
  rate_limit_tpm: number | null;
  daily_token_budget: number | null;
  monthly_token_budget: number | null;
  max_concurrent_requests: number | null;
  priority: string | number;
  scopes: string[];
}

const keys = async (): Promise<Key[]> => (await api.json("GET", "/api/api-keys")).body as unknown as Key[];

/** The keys page as a fresh load shows it (no key shown once, no error marks), its table's rows drawn. */
const openKeys = async (p: Page) => {
  await p.goto(`${router.url}/dashboard/#/keys`);
  await p.reload();
  await p.getByRole("form", { name: "Create an API key" }).waitFor();
  await p.locator("table[aria-label='API keys'] tbody tr").first().waitFor();
};

beforeAll(async () => {
  const models = tempDir("dash-limits");
  fs.writeFileSync(path.join(models, `${MODEL}.gguf`), "instant: never loaded");
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_ROUTER_DATA_DIR: tempDir("dash-limits-data"),
  });
  api = routerClient(router.url, { token: await login(router.url) });
  const made = await api.json("POST", "/api/users", { ...VIEWER, role: "viewer" });
  expect(made.status).toBe(201);
  viewerId = (made.body as { id: string }).id;
  browser = await launchChromium();
  ({ page } = await logIn(browser, router.url, "admin", ADMIN_PASSWORD));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await router?.proc.stop();
});

test("an admin creates a key with a tokens-per-minute limit, a daily budget and scopes; the table and the API agree", async () => {
  await openKeys(page);
  const form = page.getByRole("form", { name: "Create an API key" });
  await form.getByLabel("Name", { exact: true }).fill("limited");
  await form.getByLabel("Tokens per minute").fill("10,000");
  await form.getByLabel("Tokens per day").fill("1M");
  await expect(form.getByLabel("Inference").isChecked()).resolves.toBe(true);
  await form.getByLabel("Read-only management").check();
  await form.getByLabel("Priority").selectOption("batch");
  await form.getByRole("button", { name: "Create key" }).click();
  const shown = page.locator("input[data-new-key]");
  await shown.waitFor();
  const secret = await shown.inputValue();
  expect(secret).toMatch(/^sk-/);

  const row = page.locator("tr[data-key]", { hasText: "limited" });
  await row.waitFor();
  await expect(row.locator("td[data-limits]").textContent()).resolves.toBe("10,000 tok/min · 1M tok/day");
  await expect(row.locator("td[data-priority]").textContent()).resolves.toBe("batch");
  await expect(row.locator("td[data-scopes] .chip").allTextContents()).resolves.toEqual(["inference", "read"]);
  await expect(row.getByRole("button", { name: "Revoke" }).count()).resolves.toBe(1);
  await shot(page, "keys-limits");

  const key = (await keys()).find((k) => k.name === "limited");
  expect(key).toMatchObject({
    rate_limit_rpm: null,
    rate_limit_tpm: 10_000,
    daily_token_budget: 1_000_000,
    monthly_token_budget: null,
    max_concurrent_requests: null,
    priority: "batch",
    scopes: ["inference", "read"],
  });
  // the key itself does what its scopes say: inference and read-only management
  expect((await api.as({ key: secret }).answer("GET", "/v1/models")).status).toBe(200);
  expect((await api.as({ key: secret }).answer("GET", "/api/api-keys")).status).toBe(200);
}, 60_000);

test("a negative budget is refused with the router's message under its field, and no key is made", async () => {
  await openKeys(page);
  const before = await keys();
  const form = page.getByRole("form", { name: "Create an API key" });
  await form.getByLabel("Name", { exact: true }).fill("bad-budget");
  await form.getByLabel("Tokens per day").fill("-5");
  await form.getByRole("button", { name: "Create key" }).click();

  const alert = page.locator(".toast.error", { hasText: "daily_token_budget" });
  await alert.waitFor();
  const under = form.locator('[data-error-for="daily_token_budget"]');
  await under.waitFor();
  await expect(under.textContent()).resolves.toMatch(/^daily_token_budget must be a whole number/);
  await expect(alert.textContent()).resolves.toBe(await under.textContent());
  await expect(form.getByLabel("Tokens per day").getAttribute("aria-invalid")).resolves.toBe("true");
  await shot(page, "keys-limit-refused");

  expect(await page.locator("input[data-new-key]").count()).toBe(0);
  const after = await keys();
  expect(after.map((k) => k.id)).toEqual(before.map((k) => k.id));
  expect(after.some((k) => k.name === "bad-budget")).toBe(false);

  // corrected, the same form goes through and the mark is gone
  await form.getByLabel("Tokens per day").fill("");
  await form.getByRole("button", { name: "Create key" }).click();
  await page.locator("input[data-new-key]").waitFor();
  expect(await form.locator("[data-error-for]").count()).toBe(0);
  await page.locator("tr[data-key]", { hasText: "bad-budget" }).waitFor();
  const made = (await keys()).find((k) => k.name === "bad-budget");
  expect(made).toMatchObject({ daily_token_budget: null, scopes: ["inference"], priority: "normal" });
}, 60_000);

test("an admin sets a user's daily budget on the Users page", async () => {
  await page.goto(`${router.url}/dashboard/#/users`);
  const row = page.locator("tr[data-user]", { hasText: VIEWER.username });
  await row.waitFor();
  await expect(row.locator("td[data-limits]").textContent()).resolves.toBe("none");
  await row.getByRole("button", { name: "Limits…" }).click();
  const dialog = page.getByRole("dialog", { name: `Limits of ${VIEWER.username}` });
  await dialog.waitFor();

  // a refusal keeps the dialog open, the field named
  await dialog.getByLabel("Requests at once").fill("1.5");
  await dialog.getByRole("button", { name: "Save" }).click();
  await dialog.locator('[data-error-for="max_concurrent_requests"]').waitFor();
  await page.locator(".toast.error", { hasText: "max_concurrent_requests" }).waitFor();
  await shot(page, "users-limits-dialog");

  await dialog.getByLabel("Requests at once").fill("");
  await dialog.getByLabel("Tokens per day").fill("2M");
  await dialog.getByRole("button", { name: "Save" }).click();
  await dialog.waitFor({ state: "detached" });
  await row.locator("td[data-limits]", { hasText: "2M tok/day" }).waitFor();
  await expect(row.locator("td[data-limits]").textContent()).resolves.toBe("2M tok/day");
  await shot(page, "users-limits");

  const users = (await api.json("GET", "/api/users")).body as unknown as Array<Record<string, unknown>>;
  expect(users.find((u) => u.id === viewerId)).toMatchObject({
    username: VIEWER.username,
    role: "viewer",
    rate_limit_rpm: null,
    rate_limit_tpm: null,
    daily_token_budget: 2_000_000,
    monthly_token_budget: null,
    max_concurrent_requests: null,
  });

  // opened again, the dialog shows the limit it holds
  await row.getByRole("button", { name: "Limits…" }).click();
  await expect(dialog.getByLabel("Tokens per day").inputValue()).resolves.toBe("2000000");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
}, 60_000);

test("a viewer sees the create form, makes a key for themselves, and revokes it", async () => {
  const { context, page: p } = await logIn(browser, router.url, VIEWER.username, VIEWER.password);
  try {
    await p.goto(`${router.url}/dashboard/#/keys`);
    const form = p.getByRole("form", { name: "Create an API key" });
    await form.waitFor();
    await p.locator("table[aria-label='API keys'] td", { hasText: "No API keys yet." }).waitFor();
    // for themselves only: no owner to choose, no priority above normal
    expect(await form.getByLabel("Owner", { exact: true }).count()).toBe(0);
    const priorities = await form
      .getByLabel("Priority")
      .locator("option")
      .evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value));
    expect(priorities).toEqual(["", "batch"]);

    await form.getByLabel("Name", { exact: true }).fill("vera-own");
    await form.getByLabel("Requests per minute").fill("60");
    await form.getByRole("button", { name: "Create key" }).click();
    await p.locator("input[data-new-key]").waitFor();
    const row = p.locator("tr[data-key]", { hasText: "vera-own" });
    await row.waitFor();
    await expect(row.locator("td").nth(2).textContent()).resolves.toBe(VIEWER.username);
    await expect(row.locator("td[data-limits]").textContent()).resolves.toBe("60 req/min");
    await shot(p, "keys-viewer");

    const made = (await keys()).find((k) => k.name === "vera-own");
    expect(made).toMatchObject({ owner: viewerId, rate_limit_rpm: 60, priority: "normal" });

    await row.getByRole("button", { name: "Revoke" }).click();
    await p.locator("dialog button[data-confirm]").click();
    await row.waitFor({ state: "detached" });
    await waitFor(async () => !(await keys()).some((k) => k.name === "vera-own"), { what: "the key revoked" });
  } finally {
    await context.close();
  }
}, 60_000);
