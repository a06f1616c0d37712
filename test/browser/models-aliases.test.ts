/**
 * The dashboard's models on demand and aliases in a real browser (Debian's
 * Chromium driven by playwright-core) against one router process with an
 * embedded instant-engine node (its model files load at once, without being
 * read) that keeps at most two models loaded, one of them pinned: each
 * file's state on the Models page, Load and Unload, and the Aliases page's
 * forms and delete buttons; a viewer sees neither. Screenshots go to
 * test/artifacts/dashboard/.
 */
import fs from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { ADMIN_PASSWORD, login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { routerClient, type RouterClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";
import { launchChromium, logIn, shot } from "../helpers/dashboard";

const NODE = "solo-node";

let router: { proc: Proc; url: string };
let api: RouterClient;
let browser: Browser;
let page: Page;

interface ModelFile {
  id: string;
  state: string;
  pinned: boolean;
}

/** The node's model files by id, as GET /api/nodes says. */
async function files(): Promise<Record<string, ModelFile>> {
  const list = (await api.nodes()) as Array<{ id: string; model_files: ModelFile[] }>;
  return Object.fromEntries((list.find((n) => n.id === NODE)?.model_files ?? []).map((f) => [f.id, f]));
}

const stateIs = (id: string, state: string) =>
  waitFor(async () => (await files())[id]?.state === state, { what: `${id} ${state} in /api/nodes` });

beforeAll(async () => {
  const models = tempDir("dash-on-demand");
  fs.mkdirSync(path.join(models, "org"));
  // the instant engine never reads them: their size is their estimated memory
  for (const [id, bytes] of [
    ["od-pinned", 1024],
    ["od-alpha", 2048],
    ["od-beta", 3072],
    ["org/od-deep", 4096],
  ] as const) {
    fs.writeFileSync(path.join(models, `${id}.gguf`), "x".repeat(bytes));
  }
  router = await startRouter("router", {
    NODEID: NODE,
    LLM_NODE_NAME: "machine-solo",
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_NODE_MAX_LOADED_MODELS: "2",
    LLM_NODE_PINNED_MODELS: "od-pinned",
    LLM_NODE_LOAD_AT_START: "pinned",
    LLM_NODE_HEARTBEAT_SECS: "1",
    // a configured cloud (never called here): its models are offered as targets
    OPENAI_API_KEY: "sk-test-never-used",
  });
  api = routerClient(router.url, { token: await login(router.url) });
  await waitFor(async () => (await files())["org/od-deep"]?.state === "available", {
    timeoutMs: 30_000,
    what: "the node's model files in the table",
  });
  expect(
    (await api.answer("POST", "/api/users", { username: "vera", password: "viewer-password", role: "viewer" })).status,
  ).toBe(201);
  browser = await launchChromium();
  ({ page } = await logIn(browser, router.url, "admin", ADMIN_PASSWORD));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await router?.proc.stop();
});

describe("models on demand", () => {
  test("each file's state, size and limits; Load (with its progress) and Unload change it; a refusal is shown", async () => {
    await page.goto(`${router.url}/dashboard/#/models`);
    const section = page.locator(`section[data-node-files="${NODE}"]`);
    const row = (id: string) => section.locator(`tr[data-file="${id}"]`);
    const state = (id: string) => row(id).locator("td[data-state]");
    await row("od-pinned").waitFor();
    await expect(state("od-pinned").getAttribute("data-state")).resolves.toBe("ready");
    await expect(state("od-pinned").locator(".badge").textContent()).resolves.toBe("loaded");
    await expect(row("od-pinned").textContent()).resolves.toContain("pinned");
    await expect(state("od-alpha").locator(".badge").textContent()).resolves.toBe("available");
    await expect(row("od-alpha").textContent()).resolves.toContain("2.0 KiB");
    await expect(section.locator("[data-loaded]").textContent()).resolves.toBe("1 / 2");
    // the loaded one offers Unload, the others Load
    await row("od-pinned").getByRole("button", { name: "Unload" }).waitFor();
    expect(await row("od-alpha").getByRole("button", { name: "Unload" }).count()).toBe(0);

    // Load: the button says so and waits while the answer is on its way (held back here until it is checked)
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    await page.route("**/api/models/od-alpha/load", async (route) => {
      await held;
      await route.continue();
    });
    await row("od-alpha").getByRole("button", { name: "Load" }).click();
    const busy = row("od-alpha").getByRole("button", { name: "loading…" });
    await busy.waitFor();
    await expect(busy.isDisabled()).resolves.toBe(true);
    letGo();
    await state("od-alpha").locator(".badge", { hasText: "loaded" }).waitFor();
    await page.unroute("**/api/models/od-alpha/load");
    await stateIs("od-alpha", "ready");
    await section.locator("[data-loaded]", { hasText: "2 / 2" }).waitFor();
    await shot(page, "models-on-demand");

    // an id with a slash (URL-encoded): loading it unloads the least recently used, not the pinned one
    await row("org/od-deep").getByRole("button", { name: "Load" }).click();
    await state("org/od-deep").locator(".badge", { hasText: "loaded" }).waitFor();
    await state("od-alpha").locator(".badge", { hasText: "available" }).waitFor();
    expect(await files()).toMatchObject({
      "org/od-deep": { state: "ready" },
      "od-alpha": { state: "available" },
      "od-pinned": { state: "ready" },
    });

    await row("org/od-deep").getByRole("button", { name: "Unload" }).click();
    await state("org/od-deep").locator(".badge", { hasText: "available" }).waitFor();
    await stateIs("org/od-deep", "available");

    // the pinned one is refused with the answer's message, and stays
    await row("od-pinned").getByRole("button", { name: "Unload" }).click();
    await row("od-pinned").locator('[data-error="action"]', { hasText: "is pinned" }).waitFor();
    expect((await files())["od-pinned"].state).toBe("ready");
    await shot(page, "models-on-demand-refused");
  }, 60_000);
});

describe("aliases", () => {
  test("an alias is made through the form, listed and in the API; one named as a model is refused; it is deleted", async () => {
    await page.goto(`${router.url}/dashboard/#/aliases`);
    const form = page.getByRole("form", { name: "Add an alias" });
    // the known models are offered, cloud ones included
    for (const id of ["od-alpha", "org/od-deep", "openai:gpt-4o-mini"]) {
      await page.locator(`datalist#alias-known-models option[value="${id}"]`).waitFor({ state: "attached" });
    }
    await page.locator("table[aria-label=Aliases] td", { hasText: "No aliases yet." }).waitFor();
    await form.getByLabel("Alias").fill("fast");
    await form.getByLabel("Model").fill("org/od-deep");
    await form.getByLabel("Fallbacks").fill("openai:gpt-4o-mini , od-alpha");
    await form.getByRole("button", { name: "Save alias" }).click();
    const row = page.locator('tr[data-alias="fast"]');
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain("org/od-deep");
    await expect(row.locator(".chip").allTextContents()).resolves.toEqual(["openai:gpt-4o-mini", "od-alpha"]);
    expect((await api.json("GET", "/api/aliases")).body.aliases).toEqual([
      {
        alias: "fast",
        model: "org/od-deep",
        fallbacks: ["openai:gpt-4o-mini", "od-alpha"],
        created_at: expect.any(String),
      },
    ]);
    // the form is emptied for the next one
    await expect(form.getByLabel("Alias").inputValue()).resolves.toBe("");

    // a name a node reports as a model: the API's 409 and its message, under the form
    const refused = await api.answer("POST", "/api/aliases", { alias: "od-beta", model: "od-alpha" });
    expect(refused.status).toBe(409);
    await form.getByLabel("Alias").fill("od-beta");
    await form.getByLabel("Model").fill("od-alpha");
    await form.getByRole("button", { name: "Save alias" }).click();
    await form.locator('[data-error="form"]', { hasText: refused.body.error.message }).waitFor();
    expect(await page.locator('tr[data-alias="od-beta"]').count()).toBe(0);
    await shot(page, "aliases");

    // a model's fallbacks, set and then removed with an empty list
    const fallbacks = page.getByRole("form", { name: "Set a model's fallbacks" });
    await fallbacks.getByLabel("Model").fill("od-beta");
    await fallbacks.getByLabel("Fallbacks").fill("fast");
    await fallbacks.getByRole("button", { name: "Save fallbacks" }).click();
    await page.locator('tr[data-fallbacks="od-beta"]', { hasText: "fast" }).waitFor();
    expect((await api.json("GET", "/api/aliases")).body.fallbacks).toEqual([{ model: "od-beta", fallbacks: ["fast"] }]);
    // an alias in use is not deleted: the answer's message
    await row.getByRole("button", { name: "Delete" }).click();
    await page.locator("dialog button[data-confirm]").click();
    await page.locator("#toasts .toast.error", { hasText: "The alias 'fast' is named by" }).waitFor();
    await expect(row.count()).resolves.toBe(1);
    await page.locator('tr[data-fallbacks="od-beta"]').getByRole("button", { name: "Edit" }).click();
    await expect(fallbacks.getByLabel("Model").inputValue()).resolves.toBe("od-beta");
    await fallbacks.getByLabel("Fallbacks").fill("");
    await fallbacks.getByRole("button", { name: "Save fallbacks" }).click();
    await page.locator('tr[data-fallbacks="od-beta"]').waitFor({ state: "detached" });

    await row.getByRole("button", { name: "Delete" }).click();
    await page.locator("dialog button[data-confirm]").click();
    await row.waitFor({ state: "detached" });
    expect((await api.json("GET", "/api/aliases")).body).toEqual({ aliases: [], fallbacks: [] });
  }, 60_000);
});

test("a viewer sees the files and the aliases, without Load, Unload or the forms", async () => {
  expect((await api.answer("POST", "/api/aliases", { alias: "seen", model: "od-alpha" })).status).toBe(201);
  const { context, page: p } = await logIn(browser, router.url, "vera", "viewer-password");
  try {
    await p.goto(`${router.url}/dashboard/#/models`);
    await p.locator(`section[data-node-files="${NODE}"] tr[data-file="od-alpha"]`).waitFor();
    expect(await p.getByRole("button", { name: /^(Load|Unload)$/ }).count()).toBe(0);
    await p.getByRole("link", { name: "Aliases" }).click();
    await p.locator('tr[data-alias="seen"]').waitFor();
    expect(await p.locator("form[aria-label]").count()).toBe(0);
    expect(await p.locator("button.danger").count()).toBe(0);
  } finally {
    await context.close();
    await api.answer("DELETE", "/api/aliases/seen");
  }
});
