/**
 * Models: the catalog with per-node presence, registration, downloads with live progress, removal;
 * each node's model files with their state and Load / Unload (model-files.js).
 */
import { api } from "../api.js";
import { h, mount, fmtBytes, fmtAgo, badge, toast, field, confirmDialog, attempt } from "../dom.js";
import * as live from "../live.js";
import { nodeModels } from "./model-files.js";

const TASK_KIND = {
  done: "ok",
  failed: "bad",
  cancelled: "",
  queued: "",
  downloading: "warn",
  loading: "warn",
  converting: "warn",
};
const FINISHED = new Set(["done", "failed", "cancelled"]);

export function render(main, ctx) {
  const catalog = h("tbody");
  const tasksBox = h("div", { class: "tasks" });
  let nodes = [];
  let models = [];
  const files = nodeModels(ctx, () => load());

  const nodeName = (id) => nodes.find((n) => n.id === id)?.display_name ?? id;

  const drawCatalog = () => {
    mount(
      catalog,
      models.length
        ? models.map((m) =>
            h(
              "tr",
              { "data-model": m.id },
              h("td", {}, h("div", { class: "mono" }, m.id), m.source === "converted" ? badge("converted") : null),
              h("td", {}, fmtBytes(m.size)),
              h(
                "td",
                {},
                m.nodes.length
                  ? m.nodes.map((id) =>
                      h(
                        "span",
                        { class: "chip" },
                        nodeName(id),
                        ctx.isAdmin
                          ? h(
                              "button",
                              {
                                class: "chip-x",
                                "aria-label": `Remove from ${nodeName(id)}`,
                                onclick: () => removeFromNode(id, m.id),
                              },
                              "×",
                            )
                          : null,
                      ),
                    )
                  : h("span", { class: "muted" }, "on no node"),
              ),
              ctx.isAdmin
                ? h(
                    "td",
                    { class: "actions" },
                    downloadControl(m),
                    h("button", { class: "danger small", onclick: () => removeModel(m.id) }, "Remove"),
                  )
                : null,
            ),
          )
        : h(
            "tr",
            {},
            h(
              "td",
              { colspan: "4", class: "muted" },
              "The catalog is empty." + (ctx.isAdmin ? " Register a model below." : ""),
            ),
          ),
    );
  };

  /** "Download…": to every online inference node, or to the ones ticked. */
  const downloadControl = (m) => {
    const online = nodes.filter((n) => n.kind === "inference" && n.status === "online");
    const all = h("input", { type: "checkbox", checked: true, name: "all" });
    const boxes = online.map((n) => h("input", { type: "checkbox", name: "node", value: n.id, disabled: true }));
    all.addEventListener("change", () => boxes.forEach((b) => (b.disabled = all.checked)));
    const form = h(
      "form",
      { class: "download-form", "aria-label": `Download ${m.id}` },
      h("label", {}, all, " all online nodes"),
      online.map((n, i) => h("label", {}, boxes[i], " ", n.display_name)),
      h("button", { type: "submit", class: "small" }, "Start download"),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
      if (!all.checked && !chosen.length) return toast("Tick at least one node.", "error");
      download(m.id, all.checked ? { all: true } : { nodes: chosen });
    });
    return h("details", { class: "download" }, h("summary", {}, "Download…"), form);
  };

  const download = async (id, body) => {
    const started = await attempt(
      () => api.post(`/api/models/${encodeURIComponent(id)}/download`, body),
      ({ tasks }) => `Downloading to ${tasks.length} node${tasks.length === 1 ? "" : "s"}.`,
    );
    if (started) loadTasks();
  };

  const removeModel = async (id) => {
    if (!(await confirmDialog(`Remove ${id} from the catalog?`, "Remove"))) return;
    if (await attempt(() => api.del(`/api/models/${encodeURIComponent(id)}`), "Removed from the catalog.")) load();
  };

  const removeFromNode = async (nodeId, model) => {
    if (!(await confirmDialog(`Unload ${model} and delete its file on ${nodeName(nodeId)}?`, "Delete file"))) return;
    if (
      await attempt(
        () => api.del(`/api/nodes/${encodeURIComponent(nodeId)}/models/${encodeURIComponent(model)}`),
        "Removed from the node.",
      )
    )
      load();
  };

  const drawTasks = (tasks) => {
    const recent = tasks.slice(0, 20);
    mount(
      tasksBox,
      recent.length
        ? recent.map((t) => {
            const percent = t.total ? Math.round((t.bytes / t.total) * 100) : null;
            return h(
              "div",
              { class: "task card", "data-task": t.id },
              h(
                "div",
                { class: "row spread" },
                h(
                  "span",
                  {},
                  h("strong", {}, t.kind ?? "task"),
                  " ",
                  h("span", { class: "mono" }, t.model),
                  t.node ? [" → ", nodeName(t.node)] : null,
                ),
                badge(t.status, TASK_KIND[t.status] ?? ""),
              ),
              h("progress", {
                max: "100",
                value: String(t.status === "done" ? 100 : (percent ?? 0)),
                "aria-label": `Progress of ${t.model}`,
              }),
              h(
                "div",
                { class: "row spread muted small" },
                h(
                  "span",
                  {},
                  `${fmtBytes(t.bytes)}${t.total ? ` of ${fmtBytes(t.total)}` : ""}${t.rate && !FINISHED.has(t.status) ? ` · ${fmtBytes(t.rate)}/s` : ""}`,
                ),
                h("span", {}, fmtAgo(t.updated_at)),
              ),
              t.error ? h("p", { class: "error small" }, t.error) : null,
              ctx.isAdmin && !FINISHED.has(t.status)
                ? h("button", { class: "secondary small", onclick: () => cancelTask(t.id) }, "Cancel")
                : null,
              ctx.isAdmin && (t.status === "failed" || t.status === "cancelled")
                ? h("button", { class: "secondary small", onclick: () => restartTask(t.id) }, "Restart")
                : null,
            );
          })
        : h("p", { class: "muted" }, "No downloads yet."),
    );
  };

  const cancelTask = async (id) => {
    if (await attempt(() => api.post(`/api/tasks/${encodeURIComponent(id)}/cancel`))) loadTasks();
  };
  const restartTask = async (id) => {
    if (await attempt(() => api.post(`/api/tasks/${encodeURIComponent(id)}/restart`))) loadTasks();
  };

  mount(
    main,
    h("h1", {}, "Models"),
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
            h("th", {}, "Model"),
            h("th", {}, "Size"),
            h("th", {}, "On nodes"),
            ctx.isAdmin ? h("th", {}, "Actions") : null,
          ),
        ),
        catalog,
      ),
    ),
    h("h2", {}, "On the nodes"),
    files.el,
    ctx.isAdmin ? registerForm(() => load()) : null,
    h("h2", {}, "Tasks"),
    tasksBox,
  );

  const load = async () => {
    try {
      [models, nodes] = await Promise.all([api.get("/api/models"), api.get("/api/nodes")]);
      drawCatalog();
      files.update(nodes);
    } catch (err) {
      toast(`Could not load models: ${err.message}`, "error");
    }
  };
  const loadTasks = () => api.get("/api/tasks").then(drawTasks, (err) => toast(err.message, "error"));
  load();
  loadTasks();
  const offTasks = live.on("tasks", () => {
    loadTasks();
    load();
  });
  // reload the catalog's presence only when some node's model list changed
  const shape = (list) => JSON.stringify(list.map((n) => [n.id, n.status, n.models]));
  const offNodes = live.on("nodes", (n) => {
    const changed = shape(n) !== shape(nodes);
    nodes = n;
    files.update(n);
    if (changed) load();
  });
  return () => {
    offTasks();
    offNodes();
  };
}

function registerForm(done) {
  const repo = h("input", { name: "repo", placeholder: "https://huggingface.co/org/repo or org/repo", required: true });
  const file = h("input", { name: "file", placeholder: "optional: model-Q4_K_M.gguf" });
  const form = h(
    "form",
    { class: "card form-grid", "aria-label": "Register a model" },
    h("h2", {}, "Register from Hugging Face"),
    field("Repository or URL", repo),
    field("GGUF file", file),
    h("button", { type: "submit" }, "Register"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { repo: repo.value.trim() };
    if (file.value.trim()) body.file = file.value.trim();
    const res = await attempt(
      () => api.post("/api/models/register", body),
      (r) => (r.task ? `Conversion task started for ${r.id ?? body.repo}.` : `Registered ${r.id}.`),
    );
    if (!res) return;
    form.reset();
    done();
  });
  return form;
}
