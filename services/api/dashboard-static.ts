/**
 * The dashboard's files: `public/` and a few browser builds from npm packages
 * (no CDN), served at `/dashboard/` with a strict Content-Security-Policy, so
 * that even text that slipped into HTML could not run a script.
 */
import { createReadStream, statSync } from "node:fs";
import type { ServerResponse } from "node:http";
import path from "node:path";
import { sendError } from "../../lib/http/respond";
import { apiError } from "../../lib/openai/errors";
import type { Handler } from "./gateway";
import type { Req } from "./types";

const PUBLIC_DIR = path.resolve(__dirname, "../../public");

const distOf = (pkg: string) => path.dirname(require.resolve(pkg));
/** Browser builds served from node_modules under `/dashboard/vendor/`. */
const VENDOR: Record<string, string> = {
  "chart.umd.min.js": path.join(distOf("chart.js"), "chart.umd.min.js"),
  "eventsource-parser.js": path.join(distOf("eventsource-parser"), "index.js"),
};

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
};

const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

/** The file a dashboard path names, or null: never outside `public/`, never a dotfile. */
export function dashboardFile(rel: string): string | null {
  if (rel.startsWith("vendor/")) return VENDOR[rel.slice("vendor/".length)] ?? null;
  if (rel === "") rel = "index.html";
  if (rel.split("/").some((part) => part.startsWith(".") || part === "")) return null;
  const file = path.resolve(PUBLIC_DIR, rel);
  return file.startsWith(PUBLIC_DIR + path.sep) && TYPES[path.extname(file)] ? file : null;
}

function serve(req: Req, res: ServerResponse, rel: string): void {
  const file = dashboardFile(rel);
  const stat = file ? statSync(file, { throwIfNoEntry: false }) : undefined;
  if (!file || !stat?.isFile()) {
    sendError(res, apiError(404, "No such dashboard file.", "not_found"));
    return;
  }
  const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const headers = { ...SECURITY_HEADERS, ETag: etag, "Cache-Control": "no-cache" };
  if (req.headers["if-none-match"] === etag) {
    res.writeHead(304, headers).end();
    return;
  }
  res.writeHead(200, { ...headers, "Content-Type": TYPES[path.extname(file)], "Content-Length": stat.size });
  createReadStream(file).pipe(res);
}

const urlOf = (req: Req) => (req as Req & { originalUrl?: string }).originalUrl ?? req.url ?? "";

export const dashboardAliases: Record<string, Handler> = {
  "GET /"(gw, req, res) {
    // relative asset URLs need the trailing slash
    const [pathname, query] = urlOf(req).split("?");
    if (!pathname.endsWith("/")) {
      res.writeHead(302, { Location: `${pathname}/${query ? `?${query}` : ""}` }).end();
      return;
    }
    serve(req, res, "");
  },
  "GET /*path"(gw, req, res) {
    const raw = req.$params?.path as unknown;
    const rel = Array.isArray(raw) ? raw.join("/") : String(raw ?? "");
    serve(req, res, rel);
  },
};

/** `GET /`: the dashboard. */
export const rootAliases: Record<string, Handler> = {
  "GET /"(_gw, _req, res) {
    res.writeHead(302, { Location: "/dashboard/" }).end();
  },
};
