/** API keys: the list (a viewer sees their own), and for admins: create (shown once) and revoke. */
import { api } from "../api.js";
import { h, mount, fmtTime, fmtAgo, toast, field, confirmDialog, badge, attempt, rows } from "../dom.js";

export function render(main, ctx) {
  const tbody = h("tbody");
  const created = h("div", { "aria-live": "polite" });
  let users = new Map();

  const load = async () => {
    try {
      const [keys, userList] = await Promise.all([api.get("/api/api-keys"), ctx.isAdmin ? api.get("/api/users") : []]);
      users = new Map(userList.map((u) => [u.id, u.username]));
      const expired = (k) => k.expires_at && new Date(k.expires_at).getTime() < Date.now();
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
              h("td", {}, users.get(k.owner) ?? (k.owner === ctx.claims?.sub ? ctx.claims.username : k.owner)),
              h(
                "td",
                {},
                k.allowed_models?.length ? k.allowed_models.join(", ") : h("span", { class: "muted" }, "all"),
              ),
              h("td", {}, k.rate_limit_rpm ? `${k.rate_limit_rpm}/min` : h("span", { class: "muted" }, "none")),
              h("td", {}, fmtTime(k.created_at)),
              h("td", {}, k.last_used_at ? fmtAgo(k.last_used_at) : "never"),
              h("td", {}, k.expires_at ? fmtTime(k.expires_at) : "never"),
              ctx.isAdmin
                ? h("td", {}, h("button", { class: "danger small", onclick: () => revoke(k) }, "Revoke"))
                : null,
            ),
          9,
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
    const rpm = h("input", { name: "rate_limit_rpm", type: "number", min: "1", placeholder: "none" });
    const form = h(
      "form",
      { class: "card form-grid", "aria-label": "Create an API key" },
      h("h2", {}, "Create a key"),
      field("Name", name),
      field("Expires in (days)", days),
      field("Allowed models", models),
      field("Requests per minute", rpm),
      h("button", { type: "submit" }, "Create key"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { name: name.value.trim() };
      if (days.value) body.expires_at = new Date(Date.now() + Number(days.value) * 86_400_000).toISOString();
      const list = models.value
        .split(",")
        .map((m) => m.trim())
        .filter(Boolean);
      if (list.length) body.allowed_models = list;
      if (rpm.value) body.rate_limit_rpm = Number(rpm.value);
      const res = await attempt(() => api.post("/api/api-keys", body));
      if (!res) return;
      form.reset();
      showOnce(res.key);
      load();
    });
    return form;
  };

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
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Name", "Key", "Owner", "Models", "Rate limit", "Created", "Last used", "Expires", ctx.isAdmin ? "" : null]
              .filter((t) => t !== null)
              .map((t) => h("th", {}, t)),
          ),
        ),
        tbody,
      ),
    ),
    ctx.isAdmin ? createForm() : null,
  );
  load();
}
