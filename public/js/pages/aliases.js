/**
 * Aliases and fallbacks: the names clients may send as `model` (each leading
 * to a model, with fallbacks tried next) and the fallbacks of real models;
 * for admins, forms to add or replace them and delete buttons.
 */
import { api } from "../api.js";
import { h, mount, fmtTime, toast, field, confirmDialog, attempt, rows } from "../dom.js";

/** "a, b , c" → ["a", "b", "c"]. */
const listOf = (text) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

const chain = (list) =>
  list.length ? list.map((m) => h("span", { class: "chip mono" }, m)) : h("span", { class: "muted" }, "none");

export function render(main, ctx) {
  const aliasBody = h("tbody");
  const fallbackBody = h("tbody");
  // the known models (local, cloud, aliases) offered while typing; any other name may be typed
  const known = h("datalist", { id: "alias-known-models" });
  const localModels = h("datalist", { id: "alias-local-models" });

  const load = async () => {
    try {
      const { aliases, fallbacks } = await api.get("/api/aliases");
      mount(
        aliasBody,
        rows(
          aliases,
          (a) =>
            h(
              "tr",
              { "data-alias": a.alias },
              h("td", { class: "mono" }, a.alias),
              h("td", { class: "mono" }, a.model),
              h("td", {}, chain(a.fallbacks)),
              h("td", {}, fmtTime(a.created_at)),
              ctx.isAdmin
                ? h(
                    "td",
                    { class: "actions" },
                    h("button", { class: "secondary small", onclick: () => aliasForm.edit(a) }, "Edit"),
                    h("button", { class: "danger small", onclick: () => removeAlias(a.alias) }, "Delete"),
                  )
                : null,
            ),
          ctx.isAdmin ? 5 : 4,
          "No aliases yet.",
        ),
      );
      mount(
        fallbackBody,
        rows(
          fallbacks,
          (f) =>
            h(
              "tr",
              { "data-fallbacks": f.model },
              h("td", { class: "mono" }, f.model),
              h("td", {}, chain(f.fallbacks)),
              ctx.isAdmin
                ? h(
                    "td",
                    { class: "actions" },
                    h("button", { class: "secondary small", onclick: () => fallbackForm.edit(f) }, "Edit"),
                    h("button", { class: "danger small", onclick: () => removeFallbacks(f.model) }, "Delete"),
                  )
                : null,
            ),
          ctx.isAdmin ? 3 : 2,
          "No model has fallbacks.",
        ),
      );
    } catch (err) {
      toast(`Could not load the aliases: ${err.message}`, "error");
    }
  };

  const loadKnown = () =>
    api.get("/api/playground/models").then(
      (res) => {
        const option = (m) =>
          h("option", { value: m.id }, m.alias_of ? `alias of ${m.alias_of}` : `${m.owned_by}, ${m.status}`);
        mount(known, res.data.map(option));
        // fallbacks are set for models a node reports (not aliases, not cloud models)
        mount(localModels, res.data.filter((m) => !m.alias_of && m.owned_by === "llm-router").map(option));
      },
      (err) => toast(err.message, "error"),
    );

  const removeAlias = async (alias) => {
    if (!(await confirmDialog(`Delete the alias ${alias}? Clients sending it get 404.`, "Delete"))) return;
    if (await attempt(() => api.del(`/api/aliases/${encodeURIComponent(alias)}`), "Alias deleted.")) {
      load();
      loadKnown();
    }
  };

  const removeFallbacks = async (model) => {
    if (!(await confirmDialog(`Delete the fallbacks of ${model}?`, "Delete"))) return;
    if (await attempt(() => api.del(`/api/fallbacks/${encodeURIComponent(model)}`), "Fallbacks deleted.")) load();
  };

  const aliasForm = ctx.isAdmin
    ? editor({
        label: "Add an alias",
        intro:
          "A new name replaces the alias of that name. The model may be a local, external or cloud model, or another alias.",
        fields: [
          ["Alias", h("input", { name: "alias", required: true, maxlength: "256", autocomplete: "off" })],
          ["Model", h("input", { name: "model", required: true, list: known.id, autocomplete: "off" })],
          ["Fallbacks", h("input", { name: "fallbacks", list: known.id, placeholder: "optional: a, b, c" })],
        ],
        submit: "Save alias",
        fill: (form, a) => {
          form.elements.alias.value = a.alias;
          form.elements.model.value = a.model;
          form.elements.fallbacks.value = a.fallbacks.join(", ");
        },
        send: (form) => {
          const body = { alias: form.elements.alias.value.trim(), model: form.elements.model.value.trim() };
          const fallbacks = listOf(form.elements.fallbacks.value);
          if (fallbacks.length) body.fallbacks = fallbacks;
          return api.post("/api/aliases", body).then((a) => `Saved the alias ${a.alias} → ${a.model}.`);
        },
        done: () => {
          load();
          loadKnown();
        },
      })
    : null;

  const fallbackForm = ctx.isAdmin
    ? editor({
        label: "Set a model's fallbacks",
        intro: "Tried in this order when the model cannot answer. An empty list removes them.",
        fields: [
          ["Model", h("input", { name: "model", required: true, list: localModels.id, autocomplete: "off" })],
          ["Fallbacks", h("input", { name: "fallbacks", list: known.id, placeholder: "a, b, c" })],
        ],
        submit: "Save fallbacks",
        fill: (form, f) => {
          form.elements.model.value = f.model;
          form.elements.fallbacks.value = f.fallbacks.join(", ");
        },
        send: (form) => {
          const model = form.elements.model.value.trim();
          const fallbacks = listOf(form.elements.fallbacks.value);
          return api
            .put(`/api/fallbacks/${encodeURIComponent(model)}`, { fallbacks })
            .then(() => (fallbacks.length ? `Saved the fallbacks of ${model}.` : `Removed the fallbacks of ${model}.`));
        },
        done: load,
      })
    : null;

  mount(
    main,
    h("h1", {}, "Aliases"),
    h(
      "p",
      { class: "muted" },
      "Clients may send an alias as ",
      h("code", {}, "model"),
      "; a request the model cannot answer goes on to its fallbacks.",
    ),
    known,
    localModels,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { "aria-label": "Aliases" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Alias", "Model", "Fallbacks", "Created", ctx.isAdmin ? "" : null]
              .filter((t) => t !== null)
              .map((t) => h("th", {}, t)),
          ),
        ),
        aliasBody,
      ),
    ),
    aliasForm?.el,
    h("h2", {}, "Fallbacks of models"),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { "aria-label": "Fallbacks of models" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Model", "Fallbacks", ctx.isAdmin ? "" : null].filter((t) => t !== null).map((t) => h("th", {}, t)),
          ),
        ),
        fallbackBody,
      ),
    ),
    fallbackForm?.el,
  );
  load();
  loadKnown();
}

/** A form whose API error is shown under it as the answer's message; `edit(item)` fills it in. */
function editor({ label, intro, fields, submit, fill, send, done }) {
  const error = h("p", { class: "error", role: "alert", "data-error": "form" });
  const form = h(
    "form",
    { class: "card form-grid", "aria-label": label },
    h("h2", {}, label),
    h("p", { class: "muted" }, intro),
    fields.map(([name, input]) => field(name, input)),
    error,
    h("button", { type: "submit" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      toast(await send(form));
      form.reset();
      done();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  return {
    el: form,
    edit(item) {
      fill(form, item);
      error.textContent = "";
      form.scrollIntoView({ block: "nearest" });
      form.elements[0].focus();
    },
  };
}
