/**
 * Usage: the daily roll-ups (`GET /api/usage`) over a range of UTC days
 * (default the last 30): tokens in and out per day as stacked bars, a table
 * per key, user, model or node, and the current table as a CSV download.
 * A viewer's answers hold only their own keys' usage.
 */
import { api, qs } from "../api.js";
import { h, mount, fmtMs, fmtNum, toast, field, rows } from "../dom.js";
import { lineChart } from "../charts.js";

const DAY_MS = 86_400_000;
const GROUPS = [
  { value: "key", label: "API key" },
  { value: "user", label: "User" },
  { value: "model", label: "Model" },
  { value: "node", label: "Node" },
];
const day = (ms) => new Date(ms).toISOString().slice(0, 10);

// kept while the tab lives, like the History page's filters
const filters = { from: day(Date.now() - 29 * DAY_MS), to: day(Date.now()), group: "key" };

/** Every UTC day from `from` to `to`, both included (a day without usage is a zero). */
function daysBetween(from, to) {
  const out = [];
  const end = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= end && out.length < 4000; t += DAY_MS) out.push(day(t));
  return out;
}

export function render(main, ctx) {
  const canvas = h("canvas", { "aria-label": "Tokens per day", role: "img" });
  const tbody = h("tbody");
  const groupHead = h("th", {}, "API key");
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  const csv = h("a", { href: "#", "data-csv": "" }, "Download CSV");
  let names = new Map();

  const from = h("input", { name: "from", type: "date", value: filters.from, required: true });
  const to = h("input", { name: "to", type: "date", value: filters.to, required: true });
  const group = h(
    "select",
    { name: "group_by" },
    GROUPS.map((g) => h("option", { value: g.value, selected: g.value === filters.group }, g.label)),
  );
  const form = h(
    "form",
    { class: "card filters", "aria-label": "Usage range" },
    field("From", from),
    field("To", to),
    field("Group by", group),
    h("div", { class: "row end" }, h("button", { type: "submit" }, "Apply"), csv),
  );

  const chart = lineChart(
    canvas,
    [
      { label: "tokens in", color: "--accent" },
      { label: "tokens out", color: "--ok" },
    ],
    { stacked: true, bars: true },
  );

  const query = (extra) => qs({ from: filters.from, to: filters.to, ...extra });
  const csvPath = () => `/api/usage${query({ group_by: filters.group, format: "csv" })}`;

  // the names of keys (a viewer gets their own) and, for admins, of users
  const loadNames = async () => {
    const [keys, users] = await Promise.all([
      api.get("/api/api-keys"),
      ctx.isAdmin ? api.get("/api/users") : Promise.resolve([]),
    ]);
    names = new Map([...keys.map((k) => [`key:${k.id}`, k.name]), ...users.map((u) => [`user:${u.id}`, u.username])]);
    if (ctx.claims?.sub && ctx.claims.username) names.set(`user:${ctx.claims.sub}`, ctx.claims.username);
  };

  const groupCell = (g) => {
    if (g === null || g === undefined) return h("td", { class: "muted" }, "none");
    const name = names.get(`${filters.group}:${g}`);
    if (!name) return h("td", { class: filters.group === "key" || filters.group === "user" ? "mono small" : "" }, g);
    return h("td", { title: g }, name);
  };

  const loadTable = async () => {
    const { rows: list } = await api.get(`/api/usage${query({ group_by: filters.group })}`);
    groupHead.textContent = GROUPS.find((g) => g.value === filters.group)?.label ?? filters.group;
    mount(
      tbody,
      rows(
        list,
        (r) =>
          h(
            "tr",
            { "data-group": r.group ?? "" },
            groupCell(r.group),
            h("td", {}, fmtNum(r.requests)),
            h("td", {}, fmtNum(r.errors)),
            h("td", {}, fmtNum(r.tokens_in)),
            h("td", {}, fmtNum(r.tokens_out)),
            h("td", {}, fmtMs(r.median_latency_ms)),
          ),
        6,
        "No usage in this range.",
      ),
    );
  };

  const loadChart = async () => {
    const { rows: list } = await api.get(`/api/usage${query({ group_by: "day" })}`);
    const byDay = new Map(list.filter((r) => r.group).map((r) => [r.group, r]));
    const labels = daysBetween(filters.from, filters.to);
    chart.update(labels, [
      labels.map((d) => byDay.get(d)?.tokens_in ?? 0),
      labels.map((d) => byDay.get(d)?.tokens_out ?? 0),
    ]);
    const total = list.reduce((a, r) => ({ req: a.req + r.requests, tok: a.tok + r.tokens_in + r.tokens_out }), {
      req: 0,
      tok: 0,
    });
    canvas.dataset.points = String(list.length);
    summary.textContent = `${fmtNum(total.req)} requests, ${fmtNum(total.tok)} tokens from ${filters.from} to ${filters.to} (UTC days).`;
  };

  const load = async () => {
    csv.setAttribute("href", csvPath());
    try {
      await Promise.all([loadChart(), loadTable()]);
    } catch (err) {
      toast(`Could not load usage: ${err.message}`, "error");
    }
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (from.value > to.value) {
      toast("From must not be after To.", "error");
      return;
    }
    filters.from = from.value;
    filters.to = to.value;
    load();
  });
  group.addEventListener("change", () => {
    filters.group = group.value;
    csv.setAttribute("href", csvPath());
    loadTable().catch((err) => toast(`Could not load usage: ${err.message}`, "error"));
  });
  // the download needs the login token: fetched here, handed over as a file (as History's export)
  csv.addEventListener("click", async (e) => {
    e.preventDefault();
    try {
      const res = await api.raw("GET", csvPath());
      const url = URL.createObjectURL(await res.blob());
      const a = h("a", { href: url, download: `usage-${filters.group}-${filters.from}-${filters.to}.csv` });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      toast(`Download failed: ${err.message}`, "error");
    }
  });

  mount(
    main,
    h("h1", {}, "Usage"),
    h(
      "p",
      { class: "muted" },
      ctx.isAdmin
        ? "Every API key's usage, from the daily roll-ups."
        : "Your API keys' usage, from the daily roll-ups.",
    ),
    form,
    summary,
    h("section", { class: "card chart" }, h("h2", {}, "Tokens per day"), h("div", { class: "chart-box" }, canvas)),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { "aria-label": "Usage" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            groupHead,
            ["Requests", "Errors", "Tokens in", "Tokens out", "Median latency"].map((t) => h("th", {}, t)),
          ),
        ),
        tbody,
      ),
    ),
  );
  loadNames()
    .catch(() => {
      // ids are shown instead of names
    })
    .then(load);
  return () => chart.destroy();
}
