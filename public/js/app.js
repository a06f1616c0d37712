/**
 * The dashboard shell: login, navigation by URL hash (#/nodes, #/history/ID…),
 * the theme switch, and the live connection. Each page module exports
 * `render(main, ctx)` and may return a function that cleans up when leaving.
 */
import { api, session, ApiError } from "./api.js";
import { h, mount, toast, field } from "./dom.js";
import * as live from "./live.js";
import * as overview from "./pages/overview.js";
import * as nodes from "./pages/nodes.js";
import * as models from "./pages/models.js";
import * as aliases from "./pages/aliases.js";
import * as history from "./pages/history.js";
import * as keys from "./pages/keys.js";
import * as users from "./pages/users.js";
import * as audit from "./pages/audit.js";
import * as usage from "./pages/usage.js";
import * as playground from "./pages/playground.js";

const PAGES = [
  { path: "overview", title: "Overview", page: overview },
  { path: "nodes", title: "Nodes", page: nodes },
  { path: "models", title: "Models", page: models },
  { path: "aliases", title: "Aliases", page: aliases },
  { path: "history", title: "History", page: history },
  { path: "usage", title: "Usage", page: usage },
  { path: "playground", title: "Playground", page: playground },
  { path: "keys", title: "API keys", page: keys },
  { path: "users", title: "Users", page: users, admin: true },
  { path: "audit", title: "Audit", page: audit, admin: true },
];

const app = document.getElementById("app");
let cleanup = null;

function theme() {
  const saved = localStorage.getItem("llm-router-theme");
  if (saved) document.documentElement.dataset.theme = saved;
}

function toggleTheme() {
  const dark =
    document.documentElement.dataset.theme === "dark" ||
    (!document.documentElement.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
  const next = dark ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  localStorage.setItem("llm-router-theme", next);
  route();
}

function showLogin(reason) {
  cleanup?.();
  cleanup = null;
  live.disconnect();
  const error = h("p", { class: "error", role: "alert" }, reason ?? "");
  const username = h("input", { name: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "login card", "aria-label": "Log in" },
    h("h1", {}, "LLM Router"),
    field("Username", username),
    field("Password", password),
    error,
    h("button", { type: "submit" }, "Log in"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const { token } = await api.post("/api/auth/login", { username: username.value, password: password.value });
      session.start(token);
      start();
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : "The router could not be reached.";
    }
  });
  mount(app, h("main", { class: "login-page" }, form));
  username.focus();
}

async function logout() {
  try {
    await api.post("/api/auth/logout");
  } catch {
    // the token is dropped here either way
  }
  session.end("You have logged out.");
}

function shell() {
  const claims = session.claims;
  const links = PAGES.filter((p) => !p.admin || session.isAdmin).map((p) =>
    h("a", { href: `#/${p.path}`, "data-page": p.path }, p.title),
  );
  const liveDot = h("span", { class: "live-dot", title: "Live updates" });
  live.onStatus((on) => {
    liveDot.classList.toggle("on", on);
    liveDot.title = on ? "Live updates: connected" : "Live updates: reconnecting";
  });
  const main = h("main", { id: "main", tabindex: "-1" });
  mount(
    app,
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    h(
      "header",
      { class: "topbar" },
      h("span", { class: "brand" }, "LLM Router"),
      h("nav", { "aria-label": "Pages" }, links),
      h(
        "div",
        { class: "user" },
        liveDot,
        h("span", { class: "who" }, claims?.username ?? "", " (", claims?.role ?? "", ")"),
        h("button", { class: "secondary small", onclick: toggleTheme, "aria-label": "Switch theme" }, "◐"),
        h("button", { class: "secondary small", onclick: logout }, "Log out"),
      ),
    ),
    main,
  );
  return main;
}

function route() {
  if (!session.valid()) {
    showLogin(session.token ? "Your session has expired. Please log in again." : "");
    return;
  }
  const main = document.getElementById("main") ?? shell();
  const [path, ...params] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const entry = PAGES.find((p) => p.path === path && (!p.admin || session.isAdmin)) ?? PAGES[0];
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === entry.path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${entry.title} · LLM Router`;
  cleanup?.();
  main.replaceChildren();
  try {
    cleanup = entry.page.render(main, { isAdmin: session.isAdmin, params, claims: session.claims }) ?? null;
  } catch (err) {
    toast(`This page failed: ${err.message}`, "error");
  }
}

function start() {
  session.watchExpiry();
  app.replaceChildren();
  live.connect();
  route();
}

session.onLogout((reason) => showLogin(reason));
window.addEventListener("hashchange", route);
theme();
if (session.valid()) start();
else showLogin(session.token ? "Your session has expired. Please log in again." : "");
