/** History: filters, pagination, a record's detail, export with the current filters. */
import { api, qs } from "../api.js";
import { h, mount, fmtMs, fmtNum, fmtTime, badge, toast, field, rows } from "../dom.js";
import * as live from "../live.js";

const PER_PAGE = 25;
// kept while the tab lives, so coming back from a detail keeps the filters
const filters = { model: "", node: "", kind: "", status: "", from: "", to: "", q: "" };
let page = 1;

function statusBadge(status) {
  return badge(String(status), status < 400 ? "ok" : status === 499 ? "" : "bad");
}

/** The first words a user would recognise the request by. */
function preview(body) {
  if (!body || typeof body !== "object") return typeof body === "string" ? body.slice(0, 120) : "";
  const messages = Array.isArray(body.messages) ? body.messages : null;
  const last = messages ? [...messages].reverse().find((m) => m && m.role === "user") : null;
  const text = last ? last.content : (body.prompt ?? body.input ?? "");
  const s = typeof text === "string" ? text : JSON.stringify(text);
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}

function query(extra = {}) {
  const f = { ...filters };
  for (const k of ["from", "to"]) if (f[k]) f[k] = new Date(f[k]).toISOString();
  return { ...f, ...extra };
}

function pretty(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

/**
 * The tool calls of a recorded answer: a chat.completion's (each choice's
 * message.tool_calls) or a streamed answer's assembled `tool_calls`.
 */
function toolCallsOf(body) {
  if (!body || typeof body !== "object") return [];
  const lists = Array.isArray(body.choices) ? body.choices.map((c) => c?.message?.tool_calls) : [body.tool_calls];
  return lists.flatMap((l) => (Array.isArray(l) ? l : [])).filter((c) => c && typeof c === "object");
}

/** A request's tool_choice in words: "auto", "function get_weather"…; "" when it has none. */
function choiceText(c) {
  if (c === undefined || c === null) return "";
  if (typeof c === "string") return c;
  if (typeof c === "object" && c.function?.name !== undefined) return `function ${String(c.function.name)}`;
  return JSON.stringify(c);
}

/** What a request asked for beyond messages: its tools (and tool_choice), its response format. */
function requestExtras(body) {
  if (!body || typeof body !== "object") return [];
  const out = [];
  if (Array.isArray(body.tools) && body.tools.length) {
    const names = body.tools.map((t) => String(t?.function?.name ?? t?.name ?? "?"));
    const choice = choiceText(body.tool_choice);
    out.push(["Tools", `${names.join(", ")}${choice ? ` (tool_choice: ${choice})` : ""}`]);
  }
  const f = body.response_format;
  if (f && typeof f === "object") {
    const name = f.json_schema?.name;
    out.push(["Response format", `${String(f.type)}${name !== undefined ? ` (${String(name)})` : ""}`]);
  }
  return out;
}

function toolCallList(calls) {
  return h(
    "section",
    { class: "card", "aria-label": "Tool calls" },
    h("h2", {}, "Tool calls"),
    h(
      "ol",
      { class: "tool-calls" },
      calls.map((c) =>
        h(
          "li",
          { "data-tool-call": "" },
          h("span", { class: "mono tool-call-name" }, String(c.function?.name ?? c.name ?? "?")),
          c.id ? h("span", { class: "muted small" }, ` ${String(c.id)}`) : null,
          h("pre", { class: "body tool-call-args" }, pretty(c.function?.arguments ?? c.arguments)),
        ),
      ),
    ),
  );
}

export function render(main, ctx) {
  if (ctx.params[0]) return renderDetail(main, ctx.params[0]);
  const tbody = h("tbody");
  const pager = h("div", { class: "row pager" });
  const newer = h("button", { class: "secondary small", hidden: true }, "New requests: refresh");
  const input = (name, attrs = {}) => {
    const el = h("input", { name, value: filters[name], ...attrs });
    el.addEventListener("change", () => (filters[name] = el.value));
    return el;
  };
  const select = (name, options) => {
    const el = h(
      "select",
      { name },
      options.map(([v, label]) => h("option", { value: v, selected: filters[name] === v }, label)),
    );
    el.addEventListener("change", () => (filters[name] = el.value));
    return el;
  };
  const form = h(
    "form",
    { class: "card filters", "aria-label": "Filter history" },
    field("Text", input("q", { type: "search", placeholder: "in request or response" })),
    field("Model", input("model")),
    field("Node", input("node", { placeholder: "id or name" })),
    field(
      "Kind",
      select("kind", [
        ["", "any"],
        ["chat", "chat"],
        ["completion", "completion"],
        ["embedding", "embedding"],
        ["rerank", "rerank"],
        ["legacy", "legacy"],
        ["cloud", "cloud"],
        ["responses", "responses"],
      ]),
    ),
    field(
      "Status",
      select("status", [
        ["", "any"],
        ["success", "success"],
        ["error", "error"],
      ]),
    ),
    field("From", input("from", { type: "datetime-local" })),
    field("To", input("to", { type: "datetime-local" })),
    h(
      "div",
      { class: "row end" },
      h("button", { type: "submit" }, "Apply"),
      h("button", { type: "button", class: "secondary", onclick: () => exportAs("csv") }, "Export CSV"),
      h("button", { type: "button", class: "secondary", onclick: () => exportAs("json") }, "Export JSON"),
    ),
  );
  form.addEventListener("input", (e) => {
    if (e.target.name in filters) filters[e.target.name] = e.target.value;
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    page = 1;
    load();
  });

  const load = async () => {
    newer.hidden = true;
    try {
      const res = await api.get(`/api/dashboard/request-responses${qs(query({ page, per_page: PER_PAGE }))}`);
      const pages = Math.max(1, Math.ceil(res.total_count / PER_PAGE));
      mount(
        tbody,
        rows(
          res.records,
          (r) =>
            h(
              "tr",
              { "data-record": r.id },
              h("td", {}, h("a", { href: `#/history/${encodeURIComponent(r.id)}` }, fmtTime(r.started_at))),
              h("td", { class: "mono small" }, r.model ?? "–"),
              h("td", {}, r.node_name ?? "–"),
              h("td", {}, r.kind, r.stream ? " (stream)" : ""),
              h("td", {}, statusBadge(r.status)),
              h("td", {}, fmtMs(r.duration_ms)),
              h("td", {}, `${fmtNum(r.tokens_in)} / ${fmtNum(r.tokens_out)}`),
              h("td", { class: "preview" }, preview(r.request_body)),
            ),
          8,
          "No request matches.",
        ),
      );
      mount(
        pager,
        h("button", { class: "secondary small", disabled: page <= 1, onclick: () => go(page - 1) }, "← Newer"),
        h("span", { class: "muted" }, `Page ${page} of ${pages} · ${fmtNum(res.total_count)} requests`),
        h("button", { class: "secondary small", disabled: page >= pages, onclick: () => go(page + 1) }, "Older →"),
      );
    } catch (err) {
      toast(err.message, "error");
    }
  };
  const go = (p) => {
    page = p;
    load();
  };

  const exportAs = async (format) => {
    try {
      const res = await api.raw("GET", `/api/dashboard/request-responses/export${qs(query({ format }))}`);
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", {
        href: url,
        download: `history-${new Date().toISOString().slice(0, 19).replace(/:/g, "-")}.${format}`,
      });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      toast(`Export failed: ${err.message}`, "error");
    }
  };

  newer.addEventListener("click", () => go(1));
  mount(
    main,
    h("h1", {}, "History"),
    form,
    h("div", { class: "row spread" }, pager, newer),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "history" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Time", "Model", "Node", "Kind", "Status", "Duration", "Tokens in / out", "Request"].map((t) =>
              h("th", {}, t),
            ),
          ),
        ),
        tbody,
      ),
    ),
  );
  load();
  // a new request shows a button instead of moving the rows under the reader
  return live.on("request", () => {
    if (page === 1) newer.hidden = false;
  });
}

function renderDetail(main, id) {
  const box = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(main, h("p", {}, h("a", { href: "#/history" }, "← History")), box);
  api.get(`/api/dashboard/request-responses/${encodeURIComponent(id)}`).then(
    (r) => {
      const rows = [
        ["Id", r.id],
        ["Started", fmtTime(r.started_at)],
        ["Endpoint", r.endpoint],
        ["Kind", `${r.kind}${r.stream ? " (stream)" : ""}`],
        ["Model", r.model ?? "–"],
        ...requestExtras(r.request_body),
        ["Node", r.node_name ? `${r.node_name} (${r.node_id})` : "–"],
        ["Nodes tried", r.nodes_tried?.join(", ") || "–"],
        ["Retries", String(r.retries)],
        ...(r.dropped_tools?.length ? [["Tools left out", r.dropped_tools.join(", ")]] : []),
        ["Status", statusBadge(r.status)],
        ["Error", r.error ?? "–"],
        ["Duration", fmtMs(r.duration_ms)],
        ["Time to first token", fmtMs(r.ttft_ms)],
        ["Tokens in / out", `${fmtNum(r.tokens_in)} / ${fmtNum(r.tokens_out)}`],
        ["Client IP", r.client_ip],
        ["API key", r.api_key_name ?? "–"],
      ];
      const calls = toolCallsOf(r.response_body);
      mount(
        box,
        h("h1", {}, "Request ", h("span", { class: "mono" }, r.id)),
        h(
          "section",
          { class: "card" },
          h(
            "dl",
            { class: "props" },
            rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
          ),
        ),
        calls.length ? toolCallList(calls) : null,
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Request body"),
          h("pre", { class: "body", "data-body": "request" }, pretty(r.request_body)),
        ),
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Response body"),
          h("pre", { class: "body", "data-body": "response" }, pretty(r.response_body)),
        ),
      );
    },
    (err) => mount(box, h("p", { class: "error" }, err.message)),
  );
}
