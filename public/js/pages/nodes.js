/** Nodes: the live table (sort, filter, search), a node's detail, and admin actions. */
import { api } from "../api.js";
import { h, mount, bar, badge, fmtAgo, fmtBytes, fmtNum, toast, field, confirmDialog, attempt } from "../dom.js";
import { lineChart } from "../charts.js";
import * as live from "../live.js";

const STATUS_KIND = { online: "ok", initializing: "warn", offline: "bad" };

function statusBadge(n) {
  return n.draining ? badge("draining", "warn") : badge(n.status, STATUS_KIND[n.status] ?? "");
}

function vram(n) {
  const used = n.gpus.reduce((a, g) => a + g.vram_used_bytes, 0);
  const total = n.gpus.reduce((a, g) => a + g.vram_total_bytes, 0);
  return total ? { p: (used / total) * 100, label: `${fmtBytes(used)} / ${fmtBytes(total)}` } : null;
}

function gpuUtil(n) {
  const u = n.gpus.filter((g) => g.utilization !== null);
  return u.length ? u.reduce((a, g) => a + g.utilization, 0) / u.length : null;
}

const COLUMNS = [
  { key: "status", label: "Status", value: (n) => (n.draining ? "draining" : n.status) },
  { key: "name", label: "Name", value: (n) => n.display_name.toLowerCase() },
  { key: "models", label: "Models", value: (n) => n.models.length },
  { key: "gpu", label: "GPU", value: (n) => n.gpu_model ?? "" },
  { key: "util", label: "Utilisation", value: (n) => gpuUtil(n) ?? n.cpu_usage },
  { key: "vram", label: "VRAM", value: (n) => vram(n)?.p ?? -1 },
  { key: "active", label: "Active / capacity", value: (n) => n.active_requests },
  { key: "tps", label: "Tokens/s", value: (n) => n.tokens_per_second },
  { key: "seen", label: "Last seen", value: (n) => n.last_seen },
];

export function render(main, ctx) {
  if (ctx.params[0]) return renderDetail(main, ctx, ctx.params[0]);
  const state = { sort: "name", dir: 1, status: "", search: "" };
  let nodes = [];
  const tbody = h("tbody");
  const thead = h("thead");
  const count = h("span", { class: "muted" });
  const search = h("input", {
    type: "search",
    placeholder: "Search name, ID, model, GPU, tag…",
    "aria-label": "Search nodes",
  });
  search.addEventListener("input", () => {
    state.search = search.value.toLowerCase();
    draw();
  });
  const statusSel = h(
    "select",
    { "aria-label": "Filter by status" },
    ["", "online", "initializing", "offline", "draining"].map((s) => h("option", { value: s }, s || "any status")),
  );
  statusSel.addEventListener("change", () => {
    state.status = statusSel.value;
    draw();
  });

  function draw() {
    mount(
      thead,
      h(
        "tr",
        {},
        COLUMNS.map((c) =>
          h(
            "th",
            { "aria-sort": state.sort === c.key ? (state.dir > 0 ? "ascending" : "descending") : "none" },
            h(
              "button",
              { class: "sort", onclick: () => sortBy(c.key) },
              c.label,
              state.sort === c.key ? (state.dir > 0 ? " ▲" : " ▼") : "",
            ),
          ),
        ),
      ),
    );
    const col = COLUMNS.find((c) => c.key === state.sort);
    const shown = nodes
      .filter(
        (n) => !state.status || (state.status === "draining" ? n.draining : n.status === state.status && !n.draining),
      )
      .filter((n) => {
        if (!state.search) return true;
        const text = [n.display_name, n.machine_name, n.id, n.gpu_model ?? "", ...n.models, ...n.tags]
          .join(" ")
          .toLowerCase();
        return text.includes(state.search);
      })
      .sort((a, b) => {
        const [x, y] = [col.value(a), col.value(b)];
        return (x < y ? -1 : x > y ? 1 : 0) * state.dir;
      });
    count.textContent = `${shown.length} of ${nodes.length}`;
    mount(
      tbody,
      shown.length
        ? shown.map((n) => {
            const v = vram(n);
            const util = gpuUtil(n);
            return h(
              "tr",
              { "data-node": n.id },
              h("td", {}, statusBadge(n)),
              h(
                "td",
                {},
                h("a", { href: `#/nodes/${encodeURIComponent(n.id)}` }, n.display_name),
                // the node ID the REPL, the CLI and the X-Router-Node header use
                h("div", { class: "node-id mono small", title: "Node ID" }, n.id),
                h("div", { class: "muted small" }, n.kind === "external" ? n.base_url : n.machine_name),
              ),
              h(
                "td",
                {},
                n.models.map((m) => h("div", { class: "mono small" }, m)),
              ),
              h("td", {}, n.gpu_model ?? h("span", { class: "muted" }, "CPU")),
              h(
                "td",
                {},
                util !== null
                  ? bar(util, `GPU ${Math.round(util)} %`)
                  : bar(n.cpu_usage, `CPU ${Math.round(n.cpu_usage)} %`),
              ),
              h("td", {}, v ? bar(v.p, v.label) : h("span", { class: "muted" }, "–")),
              h("td", {}, `${n.active_requests} / ${n.capacity}`),
              h("td", {}, fmtNum(n.tokens_per_second, 1)),
              h("td", { title: n.last_seen }, fmtAgo(n.last_seen)),
            );
          })
        : h(
            "tr",
            {},
            h(
              "td",
              { colspan: String(COLUMNS.length), class: "muted" },
              nodes.length ? "No node matches." : "No nodes yet: start one with `npm run start:node`.",
            ),
          ),
    );
  }
  function sortBy(key) {
    state.dir = state.sort === key ? -state.dir : 1;
    state.sort = key;
    draw();
  }

  mount(
    main,
    h("h1", {}, "Nodes"),
    h("div", { class: "toolbar" }, search, statusSel, count),
    h("div", { class: "table-wrap" }, h("table", { class: "nodes" }, thead, tbody)),
    ctx.isAdmin ? registerForm(() => load()) : null,
  );
  const load = () =>
    api.get("/api/nodes").then(
      (n) => {
        nodes = n;
        draw();
      },
      (err) => toast(`Could not load nodes: ${err.message}`, "error"),
    );
  load();
  const off = live.on("nodes", (n) => {
    nodes = n;
    draw();
  });
  return off;
}

function registerForm(done) {
  const url = h("input", { name: "base_url", type: "url", placeholder: "http://gpu-box:8080/v1", required: true });
  const name = h("input", { name: "name", placeholder: "optional" });
  const key = h("input", { name: "api_key", type: "password", placeholder: "optional", autocomplete: "off" });
  const form = h(
    "form",
    { class: "card form-grid", "aria-label": "Register an external runtime" },
    h("h2", {}, "Register an external runtime"),
    h("p", { class: "muted" }, "Any OpenAI-compatible server (llama.cpp server, vLLM, Ollama, another router)."),
    field("Base URL", url),
    field("Name", name),
    field("API key", key),
    h("button", { type: "submit" }, "Register"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { base_url: url.value };
    if (name.value) body.name = name.value;
    if (key.value) body.api_key = key.value;
    if (
      !(await attempt(
        () => api.post("/api/nodes", body),
        (node) => `Registered ${node.display_name}.`,
      ))
    )
      return;
    form.reset();
    done();
  });
  return form;
}

function renderDetail(main, ctx, id) {
  const info = h("section", { class: "card" });
  const canvas = h("canvas", { role: "img", "aria-label": "Node metrics, last hour" });
  const actions = h("div", { class: "row" });
  mount(
    main,
    h("p", {}, h("a", { href: "#/nodes" }, "← All nodes")),
    info,
    h("section", { class: "card chart" }, h("h2", {}, "Last hour"), h("div", { class: "chart-box" }, canvas)),
    ctx.isAdmin ? h("section", { class: "card" }, h("h2", {}, "Manage"), actions) : null,
  );
  const chart = lineChart(canvas, [
    { label: "CPU %", color: "--accent" },
    { label: "GPU %", color: "--warn" },
    { label: "active requests", color: "--ok" },
  ]);
  const path = `/api/nodes/${encodeURIComponent(id)}`;
  let editing = false;

  const drawInfo = (n) => {
    const rows = [
      ["Status", statusBadge(n)],
      ["Id", h("span", { class: "mono" }, n.id)],
      ["Kind", n.kind === "external" ? `external (${n.base_url})` : `inference (${n.engine})`],
      ["Machine", n.machine_name],
      ["IP address", n.ip_address ?? "–"],
      ["Models", n.models.length ? n.models.map((m) => h("div", { class: "mono" }, m)) : "none"],
      ["GPU", n.gpu_available ? n.gpu_devices.map((g) => `${g.count}× ${g.model}`).join(", ") : "none (CPU)"],
      ["CPU", `${n.cpu_cores} cores, ${Math.round(n.cpu_usage)} %`],
      ["Memory", `${fmtBytes(n.memory_used_bytes)} / ${fmtBytes(n.memory_total_bytes)}`],
      ["Active / capacity", `${n.active_requests} / ${n.capacity}`],
      ["Tokens/s", fmtNum(n.tokens_per_second, 1)],
      ["Tags", n.tags.length ? n.tags.map((t) => badge(t)) : "–"],
      ["Notes", n.notes || "–"],
      ["Last seen", fmtAgo(n.last_seen)],
    ];
    mount(
      info,
      h("h1", {}, n.display_name, " ", statusBadge(n)),
      h(
        "dl",
        { class: "props" },
        rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
    );
    if (ctx.isAdmin && !editing) drawActions(n);
  };

  const drawActions = (n) => {
    const name = h("input", { name: "name", value: n.display_name });
    const tags = h("input", { name: "tags", value: n.tags.join(", "), placeholder: "comma separated" });
    const notes = h("textarea", { name: "notes", rows: "2" });
    notes.value = n.notes;
    for (const el of [name, tags, notes]) {
      el.addEventListener("focus", () => (editing = true));
      el.addEventListener("blur", () => (editing = false));
    }
    const form = h(
      "form",
      { class: "form-grid", "aria-label": "Node settings" },
      field("Name", name),
      field("Tags", tags),
      field("Notes", notes),
      h("button", { type: "submit" }, "Save"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      editing = false;
      await act(
        () =>
          api.put(`${path}/settings`, {
            name: name.value,
            tags: tags.value
              .split(",")
              .map((t) => t.trim())
              .filter(Boolean),
            notes: notes.value,
          }),
        "Saved.",
      );
    });
    const external = n.kind === "external";
    mount(
      actions,
      form,
      h(
        "div",
        { class: "row" },
        n.draining
          ? h(
              "button",
              { class: "secondary", onclick: () => act(() => api.post(`${path}/undrain`), "Taking requests again.") },
              "Undrain",
            )
          : h(
              "button",
              {
                class: "secondary",
                onclick: () =>
                  confirmThen(
                    `Drain ${n.display_name}? It finishes what it runs and takes no new requests.`,
                    "Drain",
                    () => api.post(`${path}/drain`),
                    "Draining.",
                  ),
              },
              "Drain",
            ),
        external
          ? null
          : h(
              "button",
              {
                class: "secondary",
                onclick: () =>
                  confirmThen(
                    `Disconnect ${n.display_name}? The node finishes its requests and its process exits.`,
                    "Disconnect",
                    () => api.post(`${path}/disconnect`),
                    "Disconnecting.",
                  ),
              },
              "Disconnect",
            ),
        h(
          "button",
          {
            class: "danger",
            onclick: () =>
              confirmThen(
                `Delete ${n.display_name} from the table?${external ? " The runtime is unregistered." : " It comes back with its next heartbeat."}`,
                "Delete",
                () => api.del(path),
                "Deleted.",
                true,
              ),
          },
          "Delete",
        ),
      ),
    );
  };

  const confirmThen = async (question, label, work, done, leave = false) => {
    if (await confirmDialog(question, label)) await act(work, done, leave);
  };
  const act = async (work, done, leave = false) => {
    if (!(await attempt(work, done))) return;
    if (leave) location.hash = "#/nodes";
    else load();
  };

  const load = async () => {
    try {
      const [n, m] = await Promise.all([api.get(path), api.get(`${path}/metrics`)]);
      drawInfo(n);
      const s = m.samples;
      chart.update(
        s.map((x) => new Date(x.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })),
        [s.map((x) => x.cpu), s.map((x) => x.gpu), s.map((x) => x.active)],
      );
    } catch (err) {
      mount(info, h("p", { class: "error" }, err.message));
    }
  };
  load();
  const timer = setInterval(load, 10_000);
  return () => {
    clearInterval(timer);
    chart.destroy();
  };
}
