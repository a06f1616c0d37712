/**
 * The Models page's "On the nodes": every model file each inference node has
 * (loaded or on disk, loaded by the first request), its state, size,
 * quantisation, estimated memory, pinned and last use; the node's memory and
 * loaded count against its limits; and for admins Load / Unload per row.
 */
import { api } from "../api.js";
import { h, mount, fmtBytes, fmtAgo, fmtMs, fmtTime, badge, bar, toast, rows } from "../dom.js";

/** A file's state as shown, and its badge's kind. */
const STATE = {
  ready: ["loaded", "ok"],
  available: ["available", ""],
  loading: ["loading", "warn"],
  unloading: ["unloading", "warn"],
  failed: ["failed", "bad"],
};

/** `{ el, update(nodes) }`; `changed()` is called after a load or unload (to fetch the node table again). */
export function nodeModels(ctx, changed) {
  const box = h("div", { class: "node-models" });
  let nodes = [];
  let drawn = "";
  /** "node\nmodel" → what runs now ("loading…", "unloading…"), and the last answer's error. */
  const busy = new Map();
  const errors = new Map();
  const keyOf = (n, f) => `${n.id}\n${f.id}`;

  const act = async (n, f, verb) => {
    const key = keyOf(n, f);
    busy.set(key, verb === "load" ? "loading…" : "unloading…");
    errors.delete(key);
    draw(true);
    try {
      await api.post(`/api/models/${encodeURIComponent(f.id)}/${verb}`, { node: n.id });
      toast(`${verb === "load" ? "Loaded" : "Unloaded"} ${f.id} on ${n.display_name}.`);
    } catch (err) {
      errors.set(key, err.message);
    } finally {
      busy.delete(key);
      draw(true);
      changed();
    }
  };

  const actions = (n, f) => {
    const key = keyOf(n, f);
    const running = busy.get(key);
    const error = errors.get(key);
    let button = null;
    if (running) button = h("button", { class: "secondary small", disabled: true, "aria-busy": "true" }, running);
    else if (n.status !== "online") button = null;
    else if (f.state === "ready") {
      button = h("button", { class: "secondary small", onclick: () => act(n, f, "unload") }, "Unload");
    } else if (f.state === "available" || f.state === "failed") {
      button = h("button", { class: "small", onclick: () => act(n, f, "load") }, "Load");
    }
    return h(
      "td",
      { class: "actions" },
      button,
      error ? h("p", { class: "error small", role: "alert", "data-error": "action" }, error) : null,
    );
  };

  const fileRow = (n, f) => {
    const [label, kind] = STATE[f.state] ?? [f.state, ""];
    const lastLoad = f.load_ms !== null ? `last load ${fmtMs(f.load_ms)}, ${f.loads}× since start` : null;
    return h(
      "tr",
      { "data-file": f.id },
      h("td", { class: "mono" }, f.id),
      h(
        "td",
        { "data-state": f.state },
        badge(label, kind),
        f.in_use ? h("span", { class: "muted small" }, ` ${f.in_use} in use`) : null,
        f.state === "failed" && f.error ? h("p", { class: "error small" }, f.error) : null,
        lastLoad ? h("div", { class: "muted small" }, lastLoad) : null,
      ),
      h("td", {}, fmtBytes(f.size_bytes)),
      h("td", {}, f.quantization ?? h("span", { class: "muted" }, "–")),
      h(
        "td",
        {},
        fmtBytes(f.estimated_bytes),
        f.memory_bytes ? h("div", { class: "muted small" }, `${fmtBytes(f.memory_bytes)} held`) : null,
      ),
      h("td", {}, f.pinned ? badge("pinned") : h("span", { class: "muted" }, "–")),
      h("td", { title: f.last_used_at ? fmtTime(f.last_used_at) : "" }, fmtAgo(f.last_used_at)),
      ctx.isAdmin ? actions(n, f) : null,
    );
  };

  /** "Memory used / budget", "Loaded count / max", when the node has limits. */
  const limits = (n) => {
    const m = n.model_memory;
    if (!m) return null;
    const loaded = (n.model_files ?? []).filter((f) => f.state === "ready").length;
    const used = `${fmtBytes(m.used_bytes)} / ${m.budget_bytes !== null ? fmtBytes(m.budget_bytes) : "no budget"}`;
    return h(
      "div",
      { class: "row", "data-limits": "" },
      h("span", { class: "muted" }, "Memory"),
      m.budget_bytes ? bar((m.used_bytes / m.budget_bytes) * 100, used) : h("span", {}, used),
      h("span", { class: "muted" }, "· Loaded"),
      h("span", { "data-loaded": "" }, `${loaded} / ${m.max_loaded !== null ? m.max_loaded : "no limit"}`),
    );
  };

  const section = (n) => {
    const files = [...(n.model_files ?? [])].sort((a, b) => a.id.localeCompare(b.id));
    return h(
      "section",
      { class: "card", "data-node-files": n.id },
      h(
        "h3",
        {},
        n.display_name,
        " ",
        h("span", { class: "mono small muted" }, n.id),
        n.status !== "online" ? [" ", badge(n.status, "bad")] : null,
      ),
      limits(n),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Model", "State", "Size", "Quantisation", "Est. memory", "Pinned", "Last used"].map((t) =>
                h("th", {}, t),
              ),
              ctx.isAdmin ? h("th", {}, "Actions") : null,
            ),
          ),
          h(
            "tbody",
            {},
            rows(files, (f) => fileRow(n, f), ctx.isAdmin ? 8 : 7, "No model files."),
          ),
        ),
      ),
    );
  };

  /** Draws again when what it shows changed (or `force`: a button's state), not for every heartbeat. */
  function draw(force = false) {
    const shown = nodes
      .filter((n) => n.kind === "inference")
      .sort((a, b) => a.display_name.localeCompare(b.display_name));
    const signature = JSON.stringify(shown.map((n) => [n.id, n.display_name, n.status, n.model_files, n.model_memory]));
    if (!force && signature === drawn) return;
    drawn = signature;
    mount(box, shown.length ? shown.map(section) : h("p", { class: "muted" }, "No inference node is connected."));
  }

  return {
    el: box,
    update(list) {
      nodes = list;
      draw();
    },
  };
}
