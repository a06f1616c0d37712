/**
 * The JSON API with the login's token. The token lives in sessionStorage
 * (gone with the tab) and the session ends when the token expires.
 */
const KEY = "llm-router-token";
let onLogout = () => {};
let expiryTimer = null;

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? null;
    /** The field the server names (a 400's `param`). */
    this.param = error?.param ?? null;
  }
}

function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(KEY);
  },
  get claims() {
    const t = this.token;
    return t ? claimsOf(t) : null;
  },
  get isAdmin() {
    return this.claims?.role === "admin";
  },
  /** Whether a token is held and not expired. */
  valid() {
    const c = this.claims;
    return Boolean(c && c.exp * 1000 > Date.now());
  },
  start(token) {
    sessionStorage.setItem(KEY, token);
    this.watchExpiry();
  },
  watchExpiry() {
    clearTimeout(expiryTimer);
    const c = this.claims;
    if (!c) return;
    // setTimeout's limit is ~24.8 days; a token lives far less
    expiryTimer = setTimeout(
      () => this.end("Your session has expired. Please log in again."),
      c.exp * 1000 - Date.now(),
    );
  },
  end(reason) {
    clearTimeout(expiryTimer);
    sessionStorage.removeItem(KEY);
    onLogout(reason);
  },
  onLogout(fn) {
    onLogout = fn;
  },
};

async function request(method, path, body, { raw = false, signal } = {}) {
  const headers = {};
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (res.status === 401 && path !== "/api/auth/login") {
    session.end("Your session has ended. Please log in again.");
    throw new ApiError(401, { message: "Not logged in." });
  }
  if (!res.ok) {
    let err = null;
    try {
      err = (await res.json()).error;
    } catch {
      // not JSON
    }
    throw new ApiError(res.status, err);
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

export const api = {
  get: (path, opts) => request("GET", path, undefined, opts),
  post: (path, body = {}, opts) => request("POST", path, body, opts),
  put: (path, body = {}) => request("PUT", path, body),
  del: (path) => request("DELETE", path),
  raw: (method, path, body, signal) => request(method, path, body, { raw: true, signal }),
};

/** Query string from an object, leaving out empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}
