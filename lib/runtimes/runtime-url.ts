/**
 * Checks what a client sends to register an external runtime (`POST
 * /api/nodes`, `POST /api/agents`) before anything is called: the base URL is
 * parsed with the URL API, and an agent's address and port become a URL
 * through the URL API too, never by pasting strings together. Every refusal
 * is a 400 naming the field.
 */
import { isIP } from "node:net";
import { badRequest } from "../openai/errors";

export const MAX_BASE_URL_LENGTH = 2048;
/** As the node settings' `name` (PUT /api/nodes/:id/settings). */
export const MAX_NAME_LENGTH = 128;
export const MAX_API_KEY_LENGTH = 4096;
/** A DNS name's limit. */
const MAX_HOST_LENGTH = 253;

const invalid = (param: string, message: string) => badRequest(message, param, "invalid_value");
const missing = (param: string) => badRequest(`${param} is required.`, param, "missing_required_parameter");

/** Whether `s` holds a control character (C0 or DEL). */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * The base URL of an OpenAI-compatible runtime, normalised (`http://Host:80/v1/`
 * → `http://host/v1`): http or https, a host, no user or password (the key
 * goes in `api_key`, and the base URL is shown in the node table), no query or
 * fragment (the API paths are appended to it).
 */
export function parseBaseUrl(value: unknown, param = "base_url"): string {
  if (value === undefined || value === null || value === "") throw missing(param);
  if (typeof value !== "string") throw invalid(param, `${param} must be a string.`);
  if (value.length > MAX_BASE_URL_LENGTH) {
    throw invalid(param, `${param} is longer than ${MAX_BASE_URL_LENGTH} characters.`);
  }
  // the URL parser drops or rewrites these silently
  if (/[\s\\]/.test(value) || hasControl(value)) {
    throw invalid(param, `${param} must not contain spaces, control characters or backslashes.`);
  }
  if (!/^https?:\/\/[^/]/i.test(value)) {
    throw invalid(param, `${param} must be an http:// or https:// URL, such as http://gpu-box:8000/v1.`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(param, `${param} is not a valid URL.`);
  }
  const authority = value.slice(value.indexOf("//") + 2).split("/")[0];
  if (url.username || url.password || authority.includes("@")) {
    throw invalid(param, `${param} must not hold a user name or password: send the runtime's key as api_key.`);
  }
  if (value.includes("?") || value.includes("#")) {
    throw invalid(param, `${param} must not have a query (?) or a fragment (#).`);
  }
  if (url.port === "0") throw invalid(param, `${param} has port 0.`);
  return url.origin + url.pathname.replace(/\/+$/, "");
}

/** A DNS name: labels of letters, digits, `-` and `_` (Docker's service names), not starting or ending with `-`. */
const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

/**
 * An agent's `ip_address`: a bare IPv4 or IPv6 address (`[::1]` is taken too)
 * or a host name; no port, path, user, query or spaces. Returns the host as
 * the URL API wants it (IPv6 in brackets).
 */
export function parseHost(value: unknown, param = "ip_address"): string {
  if (value === undefined || value === null || value === "") throw missing(param);
  if (typeof value !== "string") throw invalid(param, `${param} must be a string.`);
  if (value.length > MAX_HOST_LENGTH + 2) {
    throw invalid(param, `${param} is longer than ${MAX_HOST_LENGTH} characters.`);
  }
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  const family = isIP(bare);
  if (family === 6 && !bare.includes("%")) return `[${bare}]`;
  if (family === 4 && bare === value) return bare;
  const hint = "an IPv4 or IPv6 address or a host name, without a port, path or scheme";
  if (family !== 0 || bare !== value || !HOSTNAME.test(value)) throw invalid(param, `${param} must be ${hint}.`);
  // a name that ends in a number is read as an IPv4 address by URL parsers (`1.2.3.999`, `0x7f`)
  const last = value.replace(/\.$/, "").split(".").pop() ?? "";
  if (/^(?:\d+|0x[0-9a-f]*)$/i.test(last)) throw invalid(param, `${param} is not a valid IPv4 address.`);
  return value.toLowerCase();
}

/** A TCP port: an integer (or a string of digits) from 1 to 65535. */
export function parsePort(value: unknown, param = "runtime_port"): number {
  if (value === undefined || value === null || value === "") throw missing(param);
  const n = typeof value === "number" ? value : typeof value === "string" && /^\d{1,5}$/.test(value) ? +value : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw invalid(param, `${param} must be an integer from 1 to 65535.`);
  }
  return n;
}

/** The base URL of the runtime an agent names: `http://{ip_address}:{runtime_port}/v1`, built with the URL API. */
export function agentBaseUrl(ip: unknown, port: unknown): string {
  const host = parseHost(ip, "ip_address");
  const p = parsePort(port, "runtime_port");
  const url = new URL("http://runtime.invalid/v1");
  url.hostname = host;
  url.port = String(p);
  // the URL setters ignore a value they cannot take: make sure this one took
  const took = host.startsWith("[") ? isIP(url.hostname.slice(1, -1)) === 6 : url.hostname === host;
  if (!took) throw invalid("ip_address", "ip_address must be an IPv4 or IPv6 address or a host name.");
  return url.origin + url.pathname;
}

/** A display name (`name`, `machine_name`): 1 to MAX_NAME_LENGTH characters, no control characters. */
export function parseName(value: unknown, param = "name"): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalid(param, `${param} must be a string.`);
  const name = value.trim();
  if (!name) throw invalid(param, `${param} must not be empty.`);
  if (name.length > MAX_NAME_LENGTH) throw invalid(param, `${param} is longer than ${MAX_NAME_LENGTH} characters.`);
  if (hasControl(name)) throw invalid(param, `${param} must not contain control characters.`);
  return name;
}

/** The OpenAI API paths a runtime may list as served (chat, completions and embeddings are assumed whether listed or not). */
export const RUNTIME_ENDPOINTS = ["/chat/completions", "/completions", "/embeddings", "/responses"] as const;
export type RuntimeEndpoint = (typeof RUNTIME_ENDPOINTS)[number];

/**
 * `endpoints`: the API paths the runtime serves, under its base URL. Only
 * `/responses` changes what the router does (Responses requests are passed
 * through, not translated to chat); absent, none is listed.
 */
export function parseEndpoints(value: unknown, param = "endpoints"): RuntimeEndpoint[] | undefined {
  if (value === undefined || value === null) return undefined;
  const known = RUNTIME_ENDPOINTS as readonly string[];
  if (!Array.isArray(value) || value.length > 16 || !value.every((v) => known.includes(v as string))) {
    throw invalid(param, `${param} must be a list of the runtime's API paths among ${known.join(", ")}.`);
  }
  return [...new Set(value as RuntimeEndpoint[])];
}

/** The runtime's API key, sent as `Authorization: Bearer …`: visible ASCII only (it goes in a header). */
export function parseApiKey(value: unknown, param = "api_key"): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw invalid(param, `${param} must be a string.`);
  if (value.length > MAX_API_KEY_LENGTH) {
    throw invalid(param, `${param} is longer than ${MAX_API_KEY_LENGTH} characters.`);
  }
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw invalid(param, `${param} must be printable ASCII without spaces.`);
  }
  return value;
}

/**
 * What to suggest when `{baseUrl}/models` is not an OpenAI model list: the
 * same URL ending in `/v1`, unless it does already.
 */
export function suggestV1(baseUrl: string): string | null {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return null;
  }
  const path = url.pathname.replace(/\/+$/, "");
  if (/\/v1$/i.test(path)) return null;
  // `…/v1/models` or `…/v1/chat/completions` pasted whole: cut back to `…/v1`
  const v1 = path.match(/^(.*\/v1)\//i);
  return url.origin + (v1 ? v1[1] : `${path}/v1`);
}
