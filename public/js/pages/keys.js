/**
 * API keys: the list (a viewer sees their own) with each key's limits,
 * priority and scopes; create (the key shown once; admins for any user,
 * others for themselves, no priority above normal) and revoke (admins: any
 * key, others their own).
 */
import { api } from "../api.js";
import { h, mount, fmtTime, fmtAgo, toast, confirmDialog, badge, attempt, rows } from "../dom.js";
import {
  attemptForm,
  limitInputs,
  limitsCell,
  paramField,
  priorityInput,
  scopeInputs,
  scopesCell,
} from "./limits-form.js";

const COLUMNS = [
  "Name",
  "Key",
  "Owner",
  "Models",
  "Limits",
  "Priority",
  "Scopes",
  "Created",
  "Last used",
  "Expires",
  "",
];

export function render(main, ctx) {
  const tbody = h("tbody");
  const created = h("div", { "aria-live": "polite" });
  const me = ctx.claims?.sub;
  let users = new Map();
  // admins choose whose key it is (themselves unless changed)
  const owner = ctx.isAdmin ? h("select", { name: "owner" }) : null;

  const fillOwners = () => {
    const chosen = owner.value || me;
    const list = users.size ? [...users] : [[me, ctx.claims?.username ?? me]];
    mount(
      owner,
      list.map(([id, name]) => h("option", { value: id, selected: id === chosen }, id === me ? `${name} (you)` : name)),
    );
  };

  const load = async () => {
    try {
      const [keys, userList] = await Promise.all([api.get("/api/api-keys"), ctx.isAdmin ? api.get("/api/users") : []]);
      users = new Map(userList.map((u) => [u.id, u.username]));
      if (owner) fillOwners();
      const expired = (k) => k.expires_at && new Date(k.expires_at).getTime() < Date.now();
      const mine = (k) => ctx.isAdmin || k.owner === me;
      mount(
        tbody,
        rows(
          keys,
          (k) =>
            h(
              "tr",
              { "data-key": k.id },
              h("td", {}, k.name, expired(k) ? [" ", badge("expired", "bad")] : null),
              h("td", { class: "mono" }, k.key_preview),
              h("td", {}, users.get(k.owner) ?? (k.owner === me ? ctx.claims.username : k.owner)),
              h(
                "td",
                {},
                k.allowed_models?.length ? k.allowed_models.join(", ") : h("span", { class: "muted" }, "all"),
              ),
              h("td", { "data-limits": "" }, limitsCell(k)),
              h("td", { "data-priority": "" }, String(k.priority ?? "normal")),
              h("td", { "data-scopes": "" }, scopesCell(k.scopes)),
              h("td", {}, fmtTime(k.created_at)),
              h("td", {}, k.last_used_at ? fmtAgo(k.last_used_at) : "never"),
              h("td", {}, k.expires_at ? fmtTime(k.expires_at) : "never"),
              h("td", {}, mine(k) ? h("button", { class: "danger small", onclick: () => revoke(k) }, "Revoke") : null),
            ),
          COLUMNS.length,
          "No API keys yet.",
        ),
      );
    } catch (err) {
      toast(err.message, "error");
    }
  };

  const revoke = async (k) => {
    if (!(await confirmDialog(`Revoke the key "${k.name}"? Clients using it get 401 at once.`, "Revoke"))) return;
    if (await attempt(() => api.del(`/api/api-keys/${encodeURIComponent(k.id)}`), "Key revoked.")) load();
  };

  const showOnce = (key) => {
    const value = h("input", {
      class: "mono secret",
      readonly: true,
      value: key,
      "aria-label": "The new API key",
      "data-new-key": "",
    });
    const copy = h("button", { type: "button" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(key);
        copy.textContent = "Copied";
      } catch {
        value.select();
        copy.textContent = "Press Ctrl+C";
      }
    });
    mount(
      created,
      h(
        "div",
        { class: "card notice" },
        h("strong", {}, "Copy this key now: it is not shown again."),
        h("div", { class: "row" }, value, copy),
        h("button", { type: "button", class: "secondary small", onclick: () => created.replaceChildren() }, "Done"),
      ),
    );
    value.select();
  };

  const createForm = () => {
    const name = h("input", { name: "name", required: true, maxlength: "128" });
    const days = h("input", { name: "expires_days", type: "number", min: "1", placeholder: "never" });
    const models = h("input", { name: "allowed_models", placeholder: "all models; or a, b, c" });
    const limits = limitInputs({}, "Limits of this key");
    const priority = priorityInput(ctx.isAdmin);
    const scopes = scopeInputs();
    const form = h(
      "form",
      { class: "card form-grid", "aria-label": "Create an API key" },
      h("h2", {}, "Create a key"),
      ctx.isAdmin ? null : h("p", { class: "muted small" }, "The key is yours: it counts against your own limits."),
      paramField("name", "Name", name),
      owner ? paramField("owner", "Owner", owner) : null,
      paramField("expires_at", "Expires in (days)", days),
      paramField("allowed_models", "Allowed models", models),
      limits.fieldset,
      priority.field,
      scopes.fieldset,
      h("button", { type: "submit" }, "Create key"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { name: name.value.trim(), ...limits.filled() };
      if (owner && owner.value && owner.value !== me) body.owner = owner.value;
      if (days.value) body.expires_at = new Date(Date.now() + Number(days.value) * 86_400_000).toISOString();
      const list = models.value
        .split(",")
        .map((m) => m.trim())
        .filter(Boolean);
      if (list.length) body.allowed_models = list;
      if (priority.value()) body.priority = priority.value();
      if (scopes.value()) body.scopes = scopes.value();
      const res = await attemptForm(form, () => api.post("/api/api-keys", body));
      if (!res) return;
      form.reset();
      if (owner) owner.value = me;
      showOnce(res.key);
      load();
    });
    return form;
  };

  if (owner) fillOwners();
  mount(
    main,
    h("h1", {}, "API keys"),
    h("p", { class: "muted" }, "Clients send a key as ", h("code", {}, "Authorization: Bearer sk-…"), " to /v1."),
    created,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { "aria-label": "API keys" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            COLUMNS.map((t) => h("th", {}, t)),
          ),
        ),
        tbody,
      ),
    ),
    createForm(),
  );
  load();
}
