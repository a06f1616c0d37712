/** Users and roles (admins only; the API refuses viewers anyway). */
import { api } from "../api.js";
import { h, mount, fmtTime, toast, field, confirmDialog, attempt } from "../dom.js";

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
            h("td", {}, fmtTime(u.created_at)),
            h(
              "td",
              { class: "actions" },
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
            ["User", "Role", "Created", ""].map((t) => h("th", {}, t)),
          ),
        ),
        tbody,
      ),
    ),
    form,
  );
  load();
}
