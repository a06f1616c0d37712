/**
 * What the browser tests (test/browser/) drive the dashboard against, started
 * once per test file by startDashboard(): a private nats-server, a router, two
 * inference node processes serving MODEL, a hub stand-in with one model to
 * download, and Debian's Chromium (playwright-core) with the admin logged in.
 * It seeds a node's notes and a history record with markup (XSS) and a viewer
 * user "vera". Screenshots go to test/artifacts/dashboard/ (shot()).
 */
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import {
  ADMIN_PASSWORD,
  createKey,
  login,
  startCli,
  startNats,
  startRouter,
  tempDir,
  writeModel,
  type Proc,
} from "./procs";
import { routerClient, type RouterClient } from "./client";
import { waitFor } from "./wait";
import { ggufBytes, startHubStandIn, type HubStandIn } from "./standins/hub";

export const MODEL = "tiny-dash";
export const XSS = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;
/** Markup in a tool call's arguments (no "onerror": the history test finds the one record with that word). */
export const XSS_ARGS = `<svg onload="window.__xss=3"></svg><b>bold</b>`;
/** The router's secret for login tokens, so that a test can sign one. */
export const JWT_SECRET = "dashboard-test-secret-that-is-long-enough-0123456789";
const SHOTS = path.resolve(__dirname, "../artifacts/dashboard");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export interface Dashboard {
  /** The router's base URL. */
  url: string;
  /** With the admin's login. */
  api: RouterClient;
  /** Without a credential. */
  anon: RouterClient;
  browser: Browser;
  /** The admin's browser context, logged in, and its page. */
  admin: BrowserContext;
  page: Page;
  hub: HubStandIn;
  /** Logs in through the login page of a fresh context. */
  loggedIn(
    username: string,
    password: string,
    viewport?: { width: number; height: number },
  ): Promise<{ context: BrowserContext; page: Page }>;
  /**
   * The playground as a new tab shows it (an empty conversation, the panel closed with its example tool),
   * whatever an earlier test left in this tab's page, with the model chosen and the panel opened if asked.
   */
  openPlayground(p: Page, options: { extras: boolean }): Promise<void>;
  /** The history record whose request or response holds `text`, once it is stored (history is written in batches). */
  recordWith(text: string): Promise<{ id: string }>;
  stop(): Promise<void>;
}

/** A full-page screenshot in test/artifacts/dashboard/. */
export async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Debian's Chromium, headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/** A fresh context of `browser` logged in through the login page of the router at `url`; a page error fails the test. */
export async function logIn(
  browser: Browser,
  url: string,
  username: string,
  password: string,
  viewport = { width: 1280, height: 860 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const p = await context.newPage();
  p.on("pageerror", (err) => {
    throw err;
  });
  await p.goto(`${url}/dashboard/`);
  await p.getByLabel("Username").fill(username);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Log in" }).click();
  await p.getByRole("navigation", { name: "Pages" }).waitFor();
  return { context, page: p };
}

export async function startDashboard(): Promise<Dashboard> {
  fs.mkdirSync(SHOTS, { recursive: true });
  let nats: { proc: Proc; url: string } | undefined;
  let router: { proc: Proc; url: string } | undefined;
  const nodes: Proc[] = [];
  let browser: Browser | undefined;
  const hub = await startHubStandIn();
  const stop = async () => {
    await browser?.close();
    await Promise.all([router?.proc.stop(), ...nodes.map((n) => n.stop())]);
    await nats?.proc.stop();
    await hub.close();
  };
  try {
    const dashModel = ggufBytes("dash", 9);
    hub.repos.set("org/dash-model", new Map([["dash-Q4_K_M.gguf", dashModel]]));
    // about 4 s for the download, so its progress shows on the way
    hub.bytesPerSecond = Math.ceil(dashModel.length / 4);
    nats = await startNats();
    const cluster = {
      TRANSPORTER: nats.url,
      HEARTBEAT_INTERVAL: "1",
      HEARTBEAT_TIMEOUT: "3",
      LLM_NODE_HEARTBEAT_SECS: "1",
    };
    const models = tempDir("dash-models");
    writeModel(models, MODEL);
    for (const id of ["node-a", "node-b"]) {
      nodes.push(
        startCli(id, {
          ...cluster,
          SERVICES: "inference",
          NODEID: id,
          LLM_NODE_NAME: `machine-${id}`,
          LLM_NODE_MODELS_DIR: models,
          LLM_NODE_PARALLEL: "2",
        }),
      );
    }
    router = await startRouter("router", {
      ...cluster,
      SERVICES: "router",
      NODEID: "router-1",
      HF_BASE_URL: hub.url,
      LLM_ROUTER_JWT_SECRET: JWT_SECRET,
    });
    const url = router.url;
    const api = routerClient(url, { token: await login(url) });
    const anon = routerClient(url);
    const user = routerClient(url, { key: await createKey(url, { name: "seed" }) });
    // served means reachable over the transporter too, not only heartbeating
    await waitFor(
      async () => {
        const models = (await user.answer("GET", "/v1/models")).body as {
          data: Array<{ id: string; nodes: string[] }>;
        };
        return models.data.find((m) => m.id === MODEL)?.nodes.length === 2;
      },
      { timeoutMs: 60_000, what: "both inference nodes serving the model" },
    );
    // network text that must stay text: a node's notes and a history body
    expect((await api.answer("PUT", "/api/nodes/node-a/settings", { notes: XSS })).status).toBe(200);
    const res = await user.answer("POST", "/v1/chat/completions", {
      model: MODEL,
      messages: [{ role: "user", content: XSS }],
      max_tokens: 4,
    });
    expect(res).toMatchObject({ status: 200 });
    expect(
      (await api.answer("POST", "/api/users", { username: "vera", password: "viewer-password", role: "viewer" }))
        .status,
    ).toBe(201);

    const launched = await launchChromium();
    browser = launched;

    const loggedIn: Dashboard["loggedIn"] = (username, password, viewport) =>
      logIn(launched, url, username, password, viewport);
    const openPlayground: Dashboard["openPlayground"] = async (p, { extras }) => {
      await p.goto(`${url}/dashboard/#/playground`);
      await p.reload();
      await p.locator(`select[name=model] option[value="${MODEL}"]`).waitFor({ state: "attached" });
      await p.getByLabel("Model").selectOption(MODEL);
      if (extras) await p.locator("details.chat-extras > summary").click();
    };
    const recordWith: Dashboard["recordWith"] = (text) =>
      waitFor(
        async () => {
          const found = (await api.answer("GET", `/api/dashboard/request-responses?q=${encodeURIComponent(text)}`))
            .body;
          return found.total_count === 1 ? found.records[0] : undefined;
        },
        { what: `the request with ${text} in history` },
      );

    const { context: admin, page } = await loggedIn("admin", ADMIN_PASSWORD);
    return { url, api, anon, browser: launched, admin, page, hub, loggedIn, openPlayground, recordWith, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
