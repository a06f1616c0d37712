/**
 * What the API keys and Users pages share about limits: the five limits a
 * key or a user may have (see lib/quota/limits.ts), their compact text for a
 * table, inputs that read them back (blank: no limit), a key's priority and
 * scopes, and a form's submit that marks the field a server error names.
 */
import { h, field, attempt } from "../dom.js";

export const LIMITS = [
  { name: "rate_limit_rpm", label: "Requests per minute", unit: "req/min" },
  { name: "rate_limit_tpm", label: "Tokens per minute", unit: "tok/min" },
  { name: "daily_token_budget", label: "Tokens per day", unit: "tok/day" },
  { name: "monthly_token_budget", label: "Tokens per month", unit: "tok/month" },
  { name: "max_concurrent_requests", label: "Requests at once", unit: "at once" },
];

const COMPACT = [
  ["T", 1e12],
  ["B", 1e9],
  ["M", 1e6],
];
const SUFFIX = { k: 1e3, m: 1e6, g: 1e9, b: 1e9, t: 1e12 };

/** 10000 → "10,000", 1000000 → "1M", 2500000000 → "2.5B"; exact only (1234567 stays whole). */
export function amount(n) {
  for (const [s, v] of COMPACT) if (n >= v && n % (v / 100) === 0) return `${n / v}${s}`;
  return n.toLocaleString("en");
}

/** "60 req/min · 10,000 tok/min · 1M tok/day", or null when there is no limit. */
export function limitsText(item) {
  const parts = LIMITS.filter((l) => item[l.name] !== null && item[l.name] !== undefined).map(
    (l) => `${amount(item[l.name])} ${l.unit}`,
  );
  return parts.length ? parts.join(" · ") : null;
}

/** The limits as a table cell's content: their text, or a muted "none". */
export function limitsCell(item) {
  return limitsText(item) ?? h("span", { class: "muted" }, "none");
}

/**
 * "" → null; "10,000", "10k", "1.5M" → a number. Anything else is sent as
 * typed: the router answers with what the field takes.
 */
export function parseAmount(text) {
  const t = text.trim().replace(/[,_\s]/g, "");
  if (!t) return null;
  const m = /^(-?\d+(?:\.\d+)?)([kmgbt])?$/i.exec(t);
  if (!m) return text.trim();
  const n = Number(m[1]) * (m[2] ? SUFFIX[m[2].toLowerCase()] : 1);
  return Math.abs(n - Math.round(n)) < 1e-6 ? Math.round(n) : n;
}

/** Inputs for the five limits (filled from `values`), in a fieldset; `all()` reads every one, `filled()` those set. */
export function limitInputs(values = {}, legend = "Limits") {
  const inputs = LIMITS.map((l) =>
    h("input", {
      name: l.name,
      inputmode: "numeric",
      autocomplete: "off",
      placeholder: "none",
      value: values[l.name] === null || values[l.name] === undefined ? "" : String(values[l.name]),
    }),
  );
  const fieldset = h(
    "fieldset",
    { class: "limits" },
    h("legend", {}, legend),
    h(
      "div",
      { class: "form-grid cols" },
      LIMITS.map((l, i) => paramField(l.name, l.label, inputs[i])),
    ),
    h("p", { class: "muted small" }, "Blank: no limit. Whole numbers; 10k, 1.5M and 2B are understood."),
  );
  const all = () => Object.fromEntries(LIMITS.map((l, i) => [l.name, parseAmount(inputs[i].value)]));
  return {
    fieldset,
    all,
    filled: () => Object.fromEntries(Object.entries(all()).filter(([, v]) => v !== null)),
  };
}

/** A labelled field that a server error naming `param` is shown on. */
export function paramField(param, label, input) {
  const el = field(label, input);
  el.dataset.param = param;
  return el;
}

/** A key's priority: normal unless chosen; only an admin may give one above normal. */
export function priorityInput(isAdmin) {
  const select = h(
    "select",
    { name: "priority" },
    h("option", { value: "" }, "normal"),
    isAdmin ? h("option", { value: "interactive" }, "interactive (first)") : null,
    h("option", { value: "batch" }, "batch (last)"),
  );
  return { field: paramField("priority", "Priority", select), value: () => select.value || undefined };
}

/** A key's scopes: inference, read-only management, and routes by name; undefined for the default (inference). */
export function scopeInputs() {
  const inference = h("input", { type: "checkbox", name: "scope_inference" });
  inference.defaultChecked = true; // ticked again by the form's reset
  const read = h("input", { type: "checkbox", name: "scope_read" });
  const routes = h("input", { name: "scope_routes", placeholder: "e.g. POST /v1/embeddings, GET /v1/models" });
  const fieldset = h(
    "fieldset",
    { class: "scopes", "data-param": "scopes" },
    h("legend", {}, "May be used for"),
    h("label", { class: "check" }, inference, " Inference (/v1, /api/chat, /api/generate)"),
    h("label", { class: "check" }, read, " Read-only management (the owner's keys, usage…)"),
    field("Extra routes", routes),
  );
  const value = () => {
    const list = [
      ...(inference.checked ? ["inference"] : []),
      ...(read.checked ? ["read"] : []),
      ...routes.value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ];
    return list.length === 1 && list[0] === "inference" ? undefined : list;
  };
  return { fieldset, value };
}

/** A key's scopes as chips. */
export function scopesCell(scopes) {
  return (scopes ?? ["inference"]).map((s) => h("span", { class: "chip mono" }, s));
}

/** Clears what markField showed. */
function clearMarks(form) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error")) el.remove();
}

/**
 * The field a server error is about: its `param` when the client keeps it,
 * else the field named first in its message ("daily_token_budget must be…").
 */
function paramOf(form, err) {
  const names = [...form.querySelectorAll("[data-param]")].map((el) => el.dataset.param);
  if (err.param && names.includes(err.param)) return err.param;
  const at = (n) => err.message.search(new RegExp(`\\b${n}\\b`));
  return names.filter((n) => at(n) >= 0).sort((a, b) => at(a) - at(b))[0] ?? null;
}

/** The error's message under the field it names, its inputs marked invalid and the first focused. */
function markField(form, err) {
  const param = paramOf(form, err);
  const box = param && form.querySelector(`[data-param="${param}"]`);
  if (!box) return;
  const inputs = [...box.querySelectorAll("input, select")];
  for (const el of inputs) el.setAttribute("aria-invalid", "true");
  box.appendChild(h("span", { class: "field-error error small", "data-error-for": param }, err.message));
  inputs[0]?.focus();
}

/**
 * attempt() for a form's submit: the server's error is toasted as ever and,
 * when it names a field of the form, shown under that field too.
 */
export async function attemptForm(form, work, ok) {
  clearMarks(form);
  let failed = null;
  const result = await attempt(async () => {
    try {
      return await work();
    } catch (err) {
      failed = err;
      throw err;
    }
  }, ok);
  if (failed) markField(form, failed);
  return result;
}
