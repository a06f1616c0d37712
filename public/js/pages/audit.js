/**
 * The audit log (admins only; the API refuses viewers anyway): admin actions
 * newest first, filtered by actor and action, paged back by `before_seq`,
 * each entry's changes (secrets already redacted by the router) compact and
 * expandable; Verify chain checks the entries' hash chain.
 */
import { api, qs } from "../api.js";
import { h, mount, fmtNum, fmtTime, badge, toast, field, rows } from "../dom.js";

const PER_PAGE = 50;
// kept while the tab lives, like the History page's filters
const filters = { actor: "", action: "" };

// 499: the client left before the answer, no failure of the action
const failed = (status) => status >= 400 && status !== 499;

function statusBadge(status) {
  return badge(String(status), status < 400 ? "ok" : failed(status) ? "bad" : "");
}

/** `{a: 1, b: "x"}` → `a: 1, b: "x"`, cut at 80 characters. */
function compact(changes) {
  const text = Object.entries(changes)
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join(", ");
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function changesCell(changes) {
  if (changes === null || changes === undefined) return h("span", { class: "muted" }, "–");
  if (typeof changes !== "object") return h("span", { class: "mono small" }, String(changes));
  return h(
    "details",
    { class: "audit-changes" },
    h("summary", { class: "mono small" }, compact(changes) || "{}"),
    h("pre", { class: "body" }, JSON.stringify(changes, null, 2)),
  );
}

export function render(main) {
  const tbody = h("tbody");
  const pager = h("div", { class: "row pager" });
  const verdict = h("div", { class: "verify", role: "status", "aria-live": "polite", hidden: true });
  // the before_seq of each page shown so far: the first is the newest entries
  let cursors = [undefined];

  const input = (name, attrs = {}) => {
    const el = h("input", { name, value: filters[name], ...attrs });
    el.addEventListener("input", () => (filters[name] = el.value));
    return el;
  };
  const form = h(
    "form",
    { class: "card filters", "aria-label": "Filter the audit log" },
    field("Actor", input("actor", { placeholder: "a username", autocomplete: "off" })),
    field("Action", input("action", { type: "search", placeholder: "e.g. /api/nodes or DELETE" })),
    h("div", { class: "row end" }, h("button", { type: "submit" }, "Apply")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    cursors = [undefined];
    load();
  });

  const load = async () => {
    const before = cursors[cursors.length - 1];
    const query = { limit: PER_PAGE, before_seq: before, actor: filters.actor.trim(), action: filters.action.trim() };
    try {
      const { entries } = await api.get(`/api/audit${qs(query)}`);
      mount(
        tbody,
        rows(
          entries,
          (e) =>
            h(
              "tr",
              { "data-seq": String(e.seq), class: failed(e.status) ? "failed" : null },
              h("td", { class: "small" }, h("span", { class: "muted" }, `#${e.seq} `), fmtTime(e.ts)),
              h(
                "td",
                {},
                e.actor ?? "–",
                e.actor_role ? h("span", { class: "muted small" }, ` (${e.actor_role})`) : null,
              ),
              h("td", { class: "mono small" }, e.ip ?? "–"),
              h("td", { class: "mono small" }, e.action),
              h("td", { class: "mono small" }, e.target ?? "–"),
              h("td", {}, statusBadge(e.status)),
              h("td", {}, changesCell(e.changes)),
            ),
          7,
          "No entry matches.",
        ),
      );
      const last = entries[entries.length - 1];
      mount(
        pager,
        h(
          "button",
          { class: "secondary small", disabled: cursors.length <= 1, onclick: () => go(cursors.slice(0, -1)) },
          "← Newer",
        ),
        h(
          "span",
          { class: "muted" },
          entries.length ? `Entries #${fmtNum(entries[0].seq)} to #${fmtNum(last.seq)}` : "No entries",
        ),
        h(
          "button",
          {
            class: "secondary small",
            disabled: entries.length < PER_PAGE,
            onclick: () => go([...cursors, last.seq]),
          },
          "Older →",
        ),
      );
    } catch (err) {
      toast(`Could not load the audit log: ${err.message}`, "error");
    }
  };
  const go = (next) => {
    cursors = next;
    load();
  };

  const verifyButton = h("button", { class: "secondary" }, "Verify chain");
  verifyButton.addEventListener("click", async () => {
    verifyButton.disabled = true;
    try {
      const res = await api.get("/api/audit/verify");
      verdict.className = `card verify ${res.ok ? "ok" : "bad"}`;
      verdict.dataset.verify = res.ok ? "intact" : "broken";
      mount(
        verdict,
        res.ok
          ? h(
              "strong",
              {},
              `intact: ${fmtNum(res.count)} entries`,
              res.head ? ` (head ${String(res.head).slice(0, 12)}…)` : "",
            )
          : h("strong", {}, `broken at seq ${res.seq}: ${res.reason}`),
      );
      verdict.hidden = false;
    } catch (err) {
      toast(`Could not verify the chain: ${err.message}`, "error");
    } finally {
      verifyButton.disabled = false;
    }
  });

  mount(
    main,
    h("div", { class: "row spread" }, h("h1", {}, "Audit"), verifyButton),
    h(
      "p",
      { class: "muted" },
      "Every change an admin route was asked for, whatever its answer; secrets are recorded as [redacted].",
    ),
    verdict,
    form,
    pager,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "audit", "aria-label": "Audit log" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Time", "Actor", "IP", "Action", "Target", "Status", "Changes"].map((t) => h("th", {}, t)),
          ),
        ),
        tbody,
      ),
    ),
  );
  load();
}
