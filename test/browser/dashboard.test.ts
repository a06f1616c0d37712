/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core)
 * against a real cluster (test/helpers/dashboard.ts), one cluster and one
 * browser for every page (starting them is most of this file's time): its
 * files, login, the overview, nodes, the playground (streamed chats, tool
 * calls, JSON formats, the Responses API switch), history (hostile bodies,
 * tool calls, CSV export),
 * keys, models and users pages, a viewer, a phone-sized screen, session
 * expiry and logout (last: it closes the shared context). Each test sets up
 * the data it reads. Screenshots go to test/artifacts/dashboard/.
 */
import fs from "node:fs";
import { parse } from "csv-parse/sync";
import type { Page, Request } from "playwright-core";
import { ADMIN_PASSWORD } from "../helpers/procs";
import type { RouterClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";
import { signToken } from "../../lib/auth/jwt";
import { JWT_SECRET, MODEL, XSS, XSS_ARGS, shot, startDashboard, type Dashboard } from "../helpers/dashboard";
let dash: Dashboard;
let url: string;
/** The admin's page, logged in. */
let page: Page;
/** With the admin's login. */
let api: RouterClient;

beforeAll(async () => {
  dash = await startDashboard();
  ({ url, page, api } = dash);
}, 120_000);

afterAll(() => dash?.stop());

describe("the dashboard's files over HTTP", () => {
  test("served with a strict CSP; the root leads to it; nothing outside public/ is served", async () => {
    const root = await dash.anon.get("/", { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/dashboard/");
    const index = await dash.anon.get("/dashboard/");
    expect(index.status).toBe(200);
    expect(index.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(index.headers.get("x-content-type-options")).toBe("nosniff");
    const chart = await dash.anon.get("/dashboard/vendor/chart.umd.min.js");
    expect(chart.status).toBe(200);
    expect(chart.headers.get("content-type")).toMatch(/javascript/);
    for (const p of [
      "/dashboard/%2e%2e/package.json",
      "/dashboard/js/%2e%2e%2f%2e%2e%2fpackage.json",
      "/dashboard/.env",
    ]) {
      expect((await dash.anon.get(p)).status).toBe(404);
    }
  });
});

describe("the dashboard in Chromium", () => {
  test("a wrong password is refused on the login page; the API's data needs the login", async () => {
    const context = await dash.browser.newContext();
    const p = await context.newPage();
    await p.goto(`${url}/dashboard/`);
    await p.getByLabel("Username").fill("admin");
    await p.getByLabel("Password").fill("wrong-password");
    await p.getByRole("button", { name: "Log in" }).click();
    await p.getByRole("alert").filter({ hasText: "Wrong username or password." }).waitFor();
    await shot(p, "login");
    expect((await dash.anon.get("/api/nodes")).status).toBe(401);
    await context.close();
  });

  test("overview: cards show both nodes online; charts are drawn", async () => {
    await page.goto(`${url}/dashboard/#/overview`);
    const card = page.locator(".card.stat", { hasText: "Nodes online" });
    await card.locator(".stat-value", { hasText: "2 / 2" }).waitFor();
    await page
      .locator(".card.stat", { hasText: "Requests (1 h)" })
      .locator(".stat-value", { hasText: /^[1-9]/ })
      .waitFor();
    expect(await page.locator("canvas").count()).toBe(2);
    await shot(page, "overview");
  });

  test("nodes: both inference nodes with their machine, model, utilisation and capacity; a node's detail", async () => {
    await page.goto(`${url}/dashboard/#/nodes`);
    for (const id of ["node-a", "node-b"]) {
      const row = page.locator(`tr[data-node="${id}"]`);
      await row.waitFor();
      await expect(row.textContent()).resolves.toContain(`machine-${id}`);
      // the node ID (what the REPL, the CLI and X-Router-Node say) under the name, besides the machine
      await expect(row.locator(".node-id").textContent()).resolves.toBe(id);
      await expect(row.locator(".node-id").isVisible()).resolves.toBe(true);
      await expect(row.textContent()).resolves.toContain(MODEL);
      await expect(row.textContent()).resolves.toContain("/ 2"); // active / capacity
      await expect(row.locator("meter").count()).resolves.toBeGreaterThan(0);
      await expect(row.locator(".badge").textContent()).resolves.toBe("online");
    }
    // search filters the table
    await page.getByLabel("Search nodes").fill("machine-node-b");
    await waitFor(async () => (await page.locator("tbody tr[data-node]").count()) === 1, { what: "one row left" });
    await page.getByLabel("Search nodes").fill("");
    await shot(page, "nodes");

    await page.locator('tr[data-node="node-a"] a').click();
    await page.getByRole("heading", { name: /machine-node-a/ }).waitFor();
    // the notes are shown as the text they are
    await page.locator("dd", { hasText: XSS }).waitFor();
    expect(await page.evaluate("window.__xss")).toBeUndefined();
    await page.getByRole("button", { name: "Drain" }).waitFor();
    await shot(page, "node-detail");
  });

  test("keys: a key is created and shown once, works, and is revoked", async () => {
    await page.goto(`${url}/dashboard/#/keys`);
    await page.getByLabel("Name").fill("from-the-dashboard");
    await page.getByRole("button", { name: "Create key" }).click();
    const shown = page.locator("input[data-new-key]");
    await shown.waitFor();
    const key = await shown.inputValue();
    expect(key).toMatch(/^sk-/);
    await shot(page, "keys");
    expect((await api.as({ key }).answer("GET", "/v1/models")).status).toBe(200);

    const row = page.locator("tr[data-key]", { hasText: "from-the-dashboard" });
    await row.getByRole("button", { name: "Revoke" }).click();
    await page.locator("dialog button[data-confirm]").click();
    await row.waitFor({ state: "detached" });
    expect((await api.as({ key }).answer("GET", "/v1/models")).status).toBe(401);
    // reloading shows the list without the key itself
    await page.reload();
    await page.locator("tr[data-key]").first().waitFor();
    expect(await page.locator("input[data-new-key]").count()).toBe(0);
  });

  test("models: register from the hub, download to a chosen node with live progress, then it is there", async () => {
    await page.goto(`${url}/dashboard/#/models`);
    await page.getByLabel("Repository or URL").fill("https://huggingface.co/org/dash-model");
    await page.getByRole("button", { name: "Register" }).click();
    const row = page.locator('tr[data-model^="hf/org/dash-model/"]');
    await row.waitFor();
    // every progress value the task card shows, as it changes
    await page.evaluate(`(() => {
      const seen = (window.__progress = []);
      new MutationObserver(() => {
        for (const p of document.querySelectorAll(".task progress")) seen.push(Number(p.value));
      }).observe(document.querySelector(".tasks"), { subtree: true, childList: true, attributes: true });
    })()`);
    await row.getByText("Download…").click();
    await row.getByLabel("all online nodes").uncheck();
    await row.getByLabel("machine-node-a").check();
    await row.getByRole("button", { name: "Start download" }).click();
    await page
      .locator(".task", { hasText: "machine-node-a" })
      .locator(".badge", { hasText: "done" })
      .waitFor({ timeout: 30_000 });
    const seen = (await page.evaluate("window.__progress")) as number[];
    expect(seen.some((v) => v > 0 && v < 100)).toBe(true);
    await row.locator(".chip", { hasText: "machine-node-a" }).waitFor({ timeout: 15_000 });
    expect(await row.locator(".chip", { hasText: "machine-node-b" }).count()).toBe(0);
    await shot(page, "models-download");
  }, 60_000);

  test("users and models pages render for an admin", async () => {
    await page.goto(`${url}/dashboard/#/users`);
    await page.locator("tr[data-user]", { hasText: "vera" }).waitFor();
    await shot(page, "users");
    await page.goto(`${url}/dashboard/#/models`);
    await page.getByRole("form", { name: "Register a model" }).waitFor();
    await shot(page, "models");
  });

  test("a viewer sees no admin controls", async () => {
    const { context, page: p } = await dash.loggedIn("vera", "viewer-password");
    await p.locator(".card.stat", { hasText: "Nodes online" }).waitFor();
    expect(await p.getByRole("link", { name: "Users" }).count()).toBe(0);
    for (const hash of ["nodes", "nodes/node-a", "models", "keys", "history"]) {
      await p.goto(`${url}/dashboard/#/${hash}`);
      await p.locator("main h1").waitFor();
      // wait for the page's data, so that controls drawn with it would be there
      if (hash === "nodes") await p.locator("tr[data-node]").first().waitFor();
      else if (hash === "nodes/node-a") await p.locator("dl.props").waitFor();
      else if (hash === "models") await p.locator(".tasks > *").first().waitFor();
      else await p.locator("tbody tr").first().waitFor();
      expect(await p.locator("button.danger").count()).toBe(0);
      expect(await p.getByRole("button", { name: /Drain|Disconnect|Register|Revoke|Download/ }).count()).toBe(0);
      // a viewer makes keys for their own use (limits.test.ts): the keys page's create form is theirs too
      expect(await p.getByRole("button", { name: "Create key" }).count()).toBe(hash === "keys" ? 1 : 0);
      // history's filter form and the keys page's create form only
      expect(await p.locator("form[aria-label]").count()).toBe(hash === "history" || hash === "keys" ? 1 : 0);
    }
    await shot(p, "viewer-nodes");
    // the Users page is not offered; its hash falls back to the overview
    await p.goto(`${url}/dashboard/#/users`);
    await p.getByRole("heading", { name: "Overview" }).waitFor();
    await context.close();
  });

  test("on a phone-sized screen the overview and nodes stay usable", async () => {
    const { context, page: p } = await dash.loggedIn("admin", ADMIN_PASSWORD, { width: 390, height: 844 });
    await p.locator(".card.stat .stat-value", { hasText: "2 / 2" }).waitFor();
    const overflow = await p.evaluate("document.documentElement.scrollWidth - window.innerWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(p, "overview-phone");
    await context.close();
  });

  test("the session ends when its token expires", async () => {
    const me = (await api.answer("GET", "/api/auth/me")).body as { id: string };
    // a login token of the admin that lives 8 s (long enough for the page to load on a busy machine), put
    // where the login page would put it
    const { token: shortLived } = signToken({ id: me.id, username: "admin", role: "admin" }, JWT_SECRET, 8);
    const context = await dash.browser.newContext();
    await context.addInitScript(`sessionStorage.setItem("llm-router-token", ${JSON.stringify(shortLived)})`);
    const p = await context.newPage();
    await p.goto(`${url}/dashboard/#/overview`);
    await p.getByRole("heading", { name: "Overview" }).waitFor();
    await p.getByRole("alert").filter({ hasText: "Your session has expired" }).waitFor({ timeout: 30_000 });
    await p.getByRole("button", { name: "Log in" }).waitFor();
    await context.close();
  }, 60_000);

  test("playground: a chat streams into the page", async () => {
    await dash.openPlayground(page, { extras: false });
    // long enough that the answer cannot arrive in one read while the page is busy
    await page.getByLabel("Max tokens").fill("400");
    // count the distinct texts the answer goes through while it streams
    await page.getByLabel("Message").fill("Hello from the playground");
    // (a script string: the test's TypeScript has no DOM types)
    await page.evaluate(`(() => {
      const seen = (window.__seen = []);
      new MutationObserver(() => {
        const el = document.querySelector(".msg.assistant .msg-text");
        if (el?.textContent && seen[seen.length - 1] !== el.textContent) seen.push(el.textContent);
      }).observe(document.querySelector(".chat-log"), { subtree: true, childList: true, characterData: true });
    })()`);
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".muted.small", { hasText: /first token \d+ ms/ }).waitFor({ timeout: 30_000 });
    const seen = (await page.evaluate("window.__seen")) as string[];
    expect(seen.length).toBeGreaterThan(1);
    expect(seen[seen.length - 1].startsWith(seen[0])).toBe(true);
    await shot(page, "playground");
  }, 60_000);

  test("playground: the example tool forced (required) streams a call block, finish reason tool_calls; history lists the call", async () => {
    await dash.openPlayground(page, { extras: true });
    await page.getByLabel("Max tokens").fill("200");
    // the tool's name is offered once the JSON parses
    const choice = page.getByLabel("Tool choice");
    await choice.locator('option[value="function:get_weather"]').waitFor({ state: "attached" });
    await choice.selectOption("required");
    const marker = `tools-${Date.now()}`;
    await page.getByLabel("Message").fill(`What is the weather in Paris? ${marker}`);
    await page.getByRole("button", { name: "Send" }).click();
    const finish = page.locator('.msg.assistant .msg-finish[data-finish="tool_calls"]');
    await finish.waitFor({ timeout: 30_000 });
    await expect(finish.textContent()).resolves.toContain("tool_calls");
    const call = page.locator(".msg.assistant .tool-call");
    expect(await call.count()).toBe(1);
    await expect(call.locator(".tool-call-name").textContent()).resolves.toBe("get_weather");
    const args = JSON.parse((await call.locator(".tool-call-args").textContent())!);
    expect(typeof args.city).toBe("string");
    expect(args.city.length).toBeLessThanOrEqual(16);
    await shot(page, "playground-tools");

    // the same request's detail in history: the call, and the tools asked for in the summary
    const record = await dash.recordWith(marker);
    await page.goto(`${url}/dashboard/#/history/${record.id}`);
    const listed = page.locator("li[data-tool-call]");
    await listed.waitFor();
    expect(await listed.count()).toBe(1);
    await expect(listed.locator(".tool-call-name").textContent()).resolves.toBe("get_weather");
    expect(JSON.parse((await listed.locator("pre").textContent())!)).toEqual(args);
    await expect(page.locator("dt", { hasText: "Tools" }).locator("+ dd").textContent()).resolves.toBe(
      "get_weather (tool_choice: required)",
    );
    await shot(page, "history-tool-call");
  }, 60_000);

  test("playground: invalid JSON in the panel is shown and nothing is sent; a json_schema format answers JSON", async () => {
    await dash.openPlayground(page, { extras: true });
    const sent: string[] = [];
    const count = (r: { url(): string }) => {
      if (r.url().endsWith("/api/playground/chat")) sent.push(r.url());
    };
    page.on("request", count);
    try {
      const tools = page.getByLabel("Tools (JSON array)");
      const schema = page.getByLabel("JSON schema");
      // the schema is asked for only with the json_schema format
      await expect(schema.isVisible()).resolves.toBe(false);
      await page.getByLabel("Response format").selectOption("json_schema");
      await expect(schema.isVisible()).resolves.toBe(true);
      const goodSchema = await schema.inputValue();
      await page.getByLabel("Message").fill("A short answer, as JSON");
      for (const [input, error] of [
        [tools, "tools"],
        [schema, "schema"],
      ] as const) {
        const good = await input.inputValue();
        await input.fill("[{ not json");
        await page.getByRole("button", { name: "Send" }).click();
        await page.locator(`[data-error="${error}"]`).waitFor();
        await expect(input.getAttribute("aria-invalid")).resolves.toBe("true");
        await input.fill(good);
        await page.locator(`[data-error="${error}"]`).waitFor({ state: "hidden" });
      }
      expect(await page.locator(".msg").count()).toBe(0);
      expect(sent).toEqual([]);
      await expect(page.getByLabel("Message").inputValue()).resolves.toBe("A short answer, as JSON");

      // tools with a response format are refused unless a call is forced: none here
      await tools.fill("");
      expect(await schema.inputValue()).toBe(goodSchema);
      await page.getByLabel("Max tokens").fill("200");
      await page.getByRole("button", { name: "Send" }).click();
      await page.locator('.msg.assistant .msg-finish[data-finish="stop"]').waitFor({ timeout: 30_000 });
      expect(sent).toHaveLength(1);
      const value = JSON.parse((await page.locator(".msg.assistant .msg-text").textContent())!);
      expect(typeof value.answer).toBe("string");
      expect(typeof value.sure).toBe("boolean");
      await shot(page, "playground-json-schema");
    } finally {
      page.off("request", count);
    }
  }, 60_000);

  test("playground: with the Responses API chosen, turns stream through /api/playground/responses; the next turn sends the answer back as input", async () => {
    await dash.openPlayground(page, { extras: false });
    const sent: Array<Record<string, unknown>> = [];
    const watch = (r: Request) => {
      if (r.url().endsWith("/api/playground/responses")) sent.push(r.postDataJSON());
      if (r.url().endsWith("/api/playground/chat")) sent.push({ chat: true });
    };
    page.on("request", watch);
    try {
      await page.getByLabel("API", { exact: true }).selectOption("responses");
      await page.getByLabel("Max tokens").fill("40");
      await page.getByLabel("System prompt").fill("Be brief.");
      const first = `Hello through the Responses API ${Date.now()}`;
      await page.getByLabel("Message").fill(first);
      await page.getByRole("button", { name: "Send" }).click();
      const meta = page.locator(".chat-form .muted.small", { hasText: /first token \d+ ms/ });
      await meta.waitFor({ timeout: 30_000 });
      // the node that answered (X-Router-Node) and the output tokens (the usage of response.completed/.incomplete)
      await expect(meta.textContent()).resolves.toMatch(/^node node-[ab] · first token \d+ ms · [1-9]\d* tokens in /);
      const answer = page.locator(".msg.assistant").first();
      const finish = await answer.locator(".msg-finish").getAttribute("data-finish");
      expect(["stop", "length"]).toContain(finish);
      const said = (await answer.locator(".msg-text").textContent())!;
      expect(said.length).toBeGreaterThan(0);
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({
        input: [{ type: "message", role: "user", content: first }],
        instructions: "Be brief.",
        max_output_tokens: 40,
        stream: true,
        store: false,
      });
      expect(sent[0]).not.toHaveProperty("messages");
      await shot(page, "playground-responses");

      // the second turn sends the conversation again, the first answer included
      await page.getByLabel("Message").fill("And once more");
      await page.getByRole("button", { name: "Send" }).click();
      await page
        .locator(".msg.assistant")
        .nth(1)
        .locator('.msg-finish:not([data-finish=""])')
        .waitFor({ timeout: 30_000 });
      expect(sent).toHaveLength(2);
      expect(sent[1].input).toEqual([
        { type: "message", role: "user", content: first },
        { type: "message", role: "assistant", content: said },
        { type: "message", role: "user", content: "And once more" },
      ]);

      // the choice stays while moving between pages, like the model's
      await page.goto(`${url}/dashboard/#/overview`);
      await page.getByRole("heading", { name: "Overview" }).waitFor();
      await page.goto(`${url}/dashboard/#/playground`);
      await expect(page.getByLabel("API", { exact: true }).inputValue()).resolves.toBe("responses");
    } finally {
      page.off("request", watch);
    }
  }, 60_000);

  test("playground: through the Responses API the panel's tool and forced choice go in its shape; the call streams into a block", async () => {
    await dash.openPlayground(page, { extras: true });
    const sent: Array<Record<string, unknown>> = [];
    const watch = (r: Request) => {
      if (r.url().endsWith("/api/playground/responses")) sent.push(r.postDataJSON());
    };
    page.on("request", watch);
    try {
      await page.getByLabel("API", { exact: true }).selectOption("responses");
      await page.getByLabel("Max tokens").fill("200");
      const choice = page.getByLabel("Tool choice");
      await choice.locator('option[value="function:get_weather"]').waitFor({ state: "attached" });
      await choice.selectOption("function:get_weather");
      await page.getByLabel("Message").fill("What is the weather in Oslo?");
      await page.getByRole("button", { name: "Send" }).click();
      const finish = page.locator('.msg.assistant .msg-finish[data-finish="tool_calls"]');
      await finish.waitFor({ timeout: 30_000 });
      expect(sent).toHaveLength(1);
      expect(sent[0].tools).toEqual([
        {
          type: "function",
          name: "get_weather",
          description: "The current weather in a city",
          parameters: expect.objectContaining({ required: ["city"] }),
        },
      ]);
      expect(sent[0].tool_choice).toEqual({ type: "function", name: "get_weather" });
      expect(sent[0]).not.toHaveProperty("text");
      const call = page.locator(".msg.assistant .tool-call");
      expect(await call.count()).toBe(1);
      await expect(call.locator(".tool-call-name").textContent()).resolves.toBe("get_weather");
      const args = JSON.parse((await call.locator(".tool-call-args").textContent())!);
      expect(typeof args.city).toBe("string");
      await shot(page, "playground-responses-tools");
    } finally {
      page.off("request", watch);
    }
  }, 60_000);

  test("history: a playground request is listed; its detail shows both bodies; a hostile body stays text", async () => {
    // its own request, streamed through the playground's route with the admin's login
    const marker = `history-${Date.now()}`;
    const res = await api.post("/api/playground/chat", {
      model: MODEL,
      messages: [{ role: "user", content: `Hello from the playground ${marker}` }],
      stream: true,
      max_tokens: 8,
    });
    expect(res.status).toBe(200);
    await res.text();
    await dash.recordWith(marker);
    await page.goto(`${url}/dashboard/#/history`);
    await page.getByLabel("Text").fill(marker);
    await page.getByRole("button", { name: "Apply" }).click();
    const row = page.locator("tr[data-record]", { hasText: `Hello from the playground ${marker}` });
    await row.waitFor({ timeout: 15_000 });
    await expect(row.textContent()).resolves.toContain("(stream)");
    await shot(page, "history");
    await row.locator("a").click();
    await page.locator('pre[data-body="request"]', { hasText: `Hello from the playground ${marker}` }).waitFor();
    const response = await page.locator('pre[data-body="response"]').textContent();
    expect(response).toMatch(/"finish_reason"/);
    await shot(page, "history-detail");

    // the record whose prompt is markup: listed and shown as text, no element made, no script run
    await page.goto(`${url}/dashboard/#/history`);
    await page.getByLabel("Text").fill("onerror");
    await page.getByRole("button", { name: "Apply" }).click();
    // the list of the search before (this test's record) is gone
    await row.waitFor({ state: "detached" });
    const hostile = page.locator("tr[data-record]");
    await waitFor(async () => (await hostile.count()) === 1, { what: "the search finding one record" });
    await expect(hostile.locator("td.preview").textContent()).resolves.toBe(XSS);
    await hostile.locator("a").click();
    const pre = page.locator('pre[data-body="request"]', { hasText: "<img src=x onerror=" });
    await pre.waitFor();
    expect(JSON.parse((await pre.textContent())!).messages[0].content).toBe(XSS);
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.evaluate("window.__xss")).toBeUndefined();
    await shot(page, "history-hostile");
  });

  test("history: a non-streamed answer's tool call with markup in its arguments, the request's tools and format", async () => {
    const marker = `nonstream-${Date.now()}`;
    const note = {
      type: "function",
      function: {
        name: "take_note",
        parameters: {
          type: "object",
          properties: { note: { const: XSS_ARGS }, n: { enum: [1, 2] } },
          required: ["note", "n"],
        },
      },
    };
    const res = await api.json("POST", "/api/playground/chat", {
      model: MODEL,
      messages: [{ role: "user", content: marker }],
      tools: [note],
      tool_choice: { type: "function", function: { name: "take_note" } },
      // allowed beside tools when a call is forced; the summary names it
      response_format: { type: "json_object" },
      max_tokens: 200,
    });
    expect(res.status).toBe(200);
    expect(res.body.choices[0].message.tool_calls[0].function.name).toBe("take_note");
    const record = await dash.recordWith(marker);
    await page.goto(`${url}/dashboard/#/history/${record.id}`);
    const listed = page.locator("li[data-tool-call]");
    await listed.waitFor();
    await expect(listed.locator(".tool-call-name").textContent()).resolves.toBe("take_note");
    // pretty-printed, and the markup in it is text
    const args = (await listed.locator("pre").textContent())!;
    expect(args).toContain("\n  ");
    expect(JSON.parse(args).note).toBe(XSS_ARGS);
    expect(await listed.locator("svg, b").count()).toBe(0);
    expect(await page.evaluate("window.__xss")).toBeUndefined();
    await expect(page.locator("dt", { hasText: "Tools" }).locator("+ dd").textContent()).resolves.toBe(
      "take_note (tool_choice: function take_note)",
    );
    await expect(page.locator("dt", { hasText: "Response format" }).locator("+ dd").textContent()).resolves.toBe(
      "json_object",
    );
    await shot(page, "history-tool-call-hostile");
  }, 60_000);

  test("history: CSV export with the current filters downloads the matching records", async () => {
    await page.goto(`${url}/dashboard/#/history`);
    await page.getByLabel("Text").fill("");
    await page.getByLabel("Kind").selectOption("chat");
    await page.getByRole("button", { name: "Apply" }).click();
    const total = (await api.answer("GET", "/api/dashboard/request-responses?kind=chat")).body.total_count as number;
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Export CSV" }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/\.csv$/);
    const rows = parse(fs.readFileSync((await download.path())!), { columns: true }) as Array<Record<string, string>>;
    expect(rows.length).toBe(total);
    expect(rows.some((r) => r.request_body.includes(XSS.replace(/"/g, '\\"')))).toBe(true);
    expect(rows.every((r) => r.kind === "chat")).toBe(true);
    await page.getByLabel("Kind").selectOption("");
  });
  test("logging out returns to the login page and drops the token", async () => {
    await page.goto(`${url}/dashboard/#/overview`);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("button", { name: "Log in" }).waitFor();
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
    await dash.admin.close();
  });
});
