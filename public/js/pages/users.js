/** Users, roles and each user's limits (for all their keys together); admins only (the API refuses viewers anyway). */
import { api } from "../api.js";
import { h, mount, fmtTime, toast, field, confirmDialog, attempt } from "../dom.js";
import { attemptForm, limitInputs, limitsCell } from "./limits-form.js";

export function render(main, ctx) {
  const tbody = h("tbody");

  const load = async () => {
    try {
      const users = await api.get("/api/users");
      mount(
        tbody,
        users.map((u) => {
          const role = h(
            "select",
            { "aria-label": `Role of ${u.username}` },
            ["admin", "viewer"].map((r) => h("option", { value: r, selected: u.role === r }, r)),
          );
          role.addEventListener("change", () => update(u, { role: role.value }));
          const self = u.id === ctx.claims?.sub;
          return h(
            "tr",
            { "data-user": u.id },
            h("td", {}, u.username, self ? h("span", { class: "muted" }, " (you)") : null),
            h("td", {}, role),
            h("td", { "data-limits": "" }, limitsCell(u)),
            h("td", {}, fmtTime(u.created_at)),
            h(
              "td",
              { class: "actions" },
              h("button", { class: "secondary small", onclick: () => editLimits(u) }, "Limits…"),
              h("button", { class: "secondary small", onclick: () => resetPassword(u) }, "Set password"),
              self ? null : h("button", { class: "danger small", onclick: () => remove(u) }, "Delete"),
            ),
          );
        }),
      );
    } catch (err) {
      toast(err.message, "error");
    }
  };

  const update = async (u, change) => {
    await attempt(() => api.put(`/api/users/${encodeURIComponent(u.id)}`, change), `Updated ${u.username}.`);
    load();
  };

  const resetPassword = async (u) => {
    const input = h("input", { type: "password", minlength: "8", autocomplete: "new-password", required: true });
    const dialog = h(
      "dialog",
      { "aria-label": `New password for ${u.username}` },
      h(
        "form",
        { method: "dialog", class: "form-grid" },
        field(`New password for ${u.username}`, input),
        h(
          "div",
          { class: "row end" },
          h("button", { value: "cancel", class: "secondary", formnovalidate: true }, "Cancel"),
          h("button", { value: "ok" }, "Save"),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "ok") update(u, { password: input.value });
      dialog.remove();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  };

  /** A dialog with the user's five limits; Save puts them all (blank: no limit), and stays open on a refusal. */
  const editLimits = (u) => {
    const limits = limitInputs(u, `Limits of ${u.username}, for all their keys together`);
    const form = h(
      "form",
      { class: "form-grid" },
      limits.fieldset,
      h(
        "div",
        { class: "row end" },
        h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit" }, "Save"),
      ),
    );
    const dialog = h("dialog", { class: "limits-dialog", "aria-label": `Limits of ${u.username}` }, form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const put = () => api.put(`/api/users/${encodeURIComponent(u.id)}`, limits.all());
      if (!(await attemptForm(form, put, `Updated the limits of ${u.username}.`))) return;
      dialog.close();
      load();
    });
    dialog.addEventListener("close", () => dialog.remove());
    document.body.appendChild(dialog);
    dialog.showModal();
  };

  const remove = async (u) => {
    if (!(await confirmDialog(`Delete the user ${u.username}?`, "Delete"))) return;
    if (await attempt(() => api.del(`/api/users/${encodeURIComponent(u.id)}`), "User deleted.")) load();
  };

  const username = h("input", { name: "username", required: true, autocomplete: "off" });
  const password = h("input", {
    name: "password",
    type: "password",
    required: true,
    minlength: "8",
    autocomplete: "new-password",
  });
  const role = h(
    "select",
    { name: "role" },
    h("option", { value: "viewer" }, "viewer"),
    h("option", { value: "admin" }, "admin"),
  );
  const form = h(
    "form",
    { class: "card form-grid", "aria-label": "Add a user" },
    h("h2", {}, "Add a user"),
    field("Username", username),
    field("Password", password),
    field("Role", role),
    h("button", { type: "submit" }, "Add user"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { username: username.value, password: password.value, role: role.value };
    if (!(await attempt(() => api.post("/api/users", body), `Added ${body.username}.`))) return;
    form.reset();
    load();
  });

  mount(
    main,
    h("h1", {}, "Users"),
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
            ["User", "Role", "Limits", "Created", ""].map((t) => h("th", {}, t)),
          ),
        ),
        tbody,
      ),
    ),
    form,
  );
  load();
}
