/**
 * Building the page without HTML strings: every value from the network is
 * put in as a text node or a property, never parsed as markup.
 */

/**
 * h("div", { class: "card", onclick: fn }, "text", child, [more]) → Element.
 * Attributes named on* take functions; `class`, `for`, `data-*`, `aria-*`
 * and others are set as attributes; false/null/undefined ones are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else if (name === "checked" || name === "selected" || name === "disabled") el[name] = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function fmtTime(ts) {
  if (!ts) return "–";
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? "–" : d.toLocaleString();
}

export function fmtAgo(ts) {
  if (!ts) return "–";
  const s = Math.round((Date.now() - new Date(ts).getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** A 0–100 bar with its label; null shows a dash. */
export function bar(percent, label) {
  if (percent === null || percent === undefined) return h("span", { class: "muted" }, "–");
  const p = Math.max(0, Math.min(100, percent));
  const meter = h("meter", { min: "0", max: "100", low: "60", high: "85", optimum: "0", value: String(p) });
  return h("span", { class: "bar" }, meter, h("span", { class: "bar-label" }, label ?? `${Math.round(p)} %`));
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

/** A modal question; resolves true when confirmed. */
export function confirmDialog(question, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-label": "Confirm" },
      h("p", {}, question),
      h(
        "form",
        { method: "dialog", class: "row end" },
        h("button", { value: "cancel", class: "secondary" }, "Cancel"),
        h("button", { value: "ok", class: "danger", "data-confirm": "ok" }, confirmLabel),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

/** A short message at the bottom of the screen. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
}

/**
 * Runs an API call for a button: `ok` (a message, or a function of the
 * result) is shown when it worked, the error's message when it did not.
 * Resolves to the result, or undefined after an error.
 */
export async function attempt(work, ok) {
  try {
    const result = await work();
    const message = typeof ok === "function" ? ok(result) : ok;
    if (message) toast(message);
    return result ?? true;
  } catch (err) {
    toast(err.message, "error");
    return undefined;
  }
}

/** Table rows for `items`, or one row that says `empty` across `colspan` columns. */
export function rows(items, row, colspan, empty) {
  return items.length ? items.map(row) : h("tr", {}, h("td", { colspan: String(colspan), class: "muted" }, empty));
}

/** A labelled form field. */
export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}
