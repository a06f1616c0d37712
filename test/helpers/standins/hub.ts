/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, for tests that register
 * and download models: repository metadata (`GET /api/models/{org}/{repo}`,
 * with sizes and LFS SHA-256 under `?blobs=true`), model search
 * (`GET /api/models?search=&filter=gguf&limit=`), and file downloads
 * (`GET /{org}/{repo}/resolve/main/{path}`, with `Range: bytes=N-`). It can
 * cut a download midway, serve corrupted bytes, and require a token.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { buildTinyLlama, tinyModelOptions } from "../../../lib/gguf/tiny-llama";

export interface HubStandIn {
  /** Base URL to set as HF_BASE_URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** repo -> files (path -> bytes); add more at will */
  repos: Map<string, Map<string, Buffer>>;
  /** Every request received: method, path (with query), range header, authorization header. */
  requests: Array<{ method: string; path: string; range?: string; authorization?: string }>;
  /** Cut the connection of the next file download after this many body bytes (once). */
  cutNextDownloadAfter: number | null;
  /** "repo/path" whose served bytes are altered after the first 64 bytes (the metadata SHA-256 stays the real one). */
  corrupt: Set<string>;
  /** When set, every request without `Authorization: Bearer <it>` gets a 401. */
  requiredToken: string | null;
  /** When set, file downloads are sent at about this many bytes a second. */
  bytesPerSecond: number | null;
  close(): Promise<void>;
}

/** The bytes of a tiny valid GGUF model (see docs/tiny-gguf.md). */
export function ggufBytes(name: string, seed = 42): Buffer {
  return buildTinyLlama(tinyModelOptions("tiny", { name, seed }));
}

const LFS_RE = /\.(gguf|safetensors)$/i;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const sha1 = (s: string | Buffer) => createHash("sha1").update(s).digest("hex");
/** The git blob id of a file, as the Hub reports it. */
const blobId = (b: Buffer) => sha1(Buffer.concat([Buffer.from(`blob ${b.length}\0`), b]));

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

export async function startHubStandIn(): Promise<HubStandIn> {
  const hub: HubStandIn = {
    url: "",
    repos: new Map(),
    requests: [],
    cutNextDownloadAfter: null,
    corrupt: new Set(),
    requiredToken: null,
    bytesPerSecond: null,
    close: async () => undefined,
  };

  const repoInfo = (repo: string, files: Map<string, Buffer>, blobs: boolean) => ({
    _id: sha1(`id:${repo}`).slice(0, 24),
    id: repo,
    modelId: repo,
    author: repo.split("/")[0],
    sha: sha1(`commit:${repo}:${[...files.keys()].join(",")}`),
    private: false,
    gated: hub.requiredToken ? "auto" : false,
    disabled: false,
    downloads: 0,
    likes: 0,
    tags: [...files.keys()].some((p) => p.endsWith(".gguf")) ? ["gguf"] : [],
    siblings: [...files].map(([rfilename, bytes]) =>
      !blobs
        ? { rfilename }
        : LFS_RE.test(rfilename)
          ? {
              rfilename,
              size: bytes.length,
              blobId: sha1(`lfs:${sha256(bytes)}`),
              lfs: { sha256: sha256(bytes), size: bytes.length, pointerSize: 134 },
            }
          : { rfilename, size: bytes.length, blobId: blobId(bytes) },
    ),
  });

  const search = (params: URLSearchParams) => {
    const q = (params.get("search") ?? "").toLowerCase();
    const filter = params.get("filter");
    const limit = Math.max(1, Number(params.get("limit") ?? 20) || 20);
    const out = [];
    for (const [repo, files] of hub.repos) {
      if (!repo.toLowerCase().includes(q)) continue;
      if (filter === "gguf" && ![...files.keys()].some((p) => p.toLowerCase().endsWith(".gguf"))) continue;
      out.push({
        _id: sha1(`id:${repo}`).slice(0, 24),
        id: repo,
        modelId: repo,
        likes: files.size,
        downloads: 10 * files.size,
        tags: ["gguf"],
        private: false,
        createdAt: "2025-01-01T00:00:00.000Z",
        lastModified: "2025-01-02T00:00:00.000Z",
      });
      if (out.length >= limit) break;
    }
    return out;
  };

  const serveFile = (req: IncomingMessage, res: ServerResponse, repo: string, file: string) => {
    const original = hub.repos.get(repo)?.get(file);
    if (!original) {
      sendJson(res, 404, { error: "Entry not found" }, { "x-error-code": "EntryNotFound" });
      return;
    }
    let bytes = original;
    if (hub.corrupt.has(`${repo}/${file}`)) {
      bytes = Buffer.from(original);
      for (let i = 64; i < bytes.length; i += 4096) bytes[i] ^= 0xff;
    }
    const total = bytes.length;
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "accept-ranges": "bytes",
      etag: `"${LFS_RE.test(file) ? sha256(original) : blobId(original)}"`,
      "x-repo-commit": sha1(`commit:${repo}`),
    };
    if (LFS_RE.test(file)) {
      headers["x-linked-size"] = String(total);
      headers["x-linked-etag"] = `"${sha256(original)}"`;
    }
    let start = 0;
    let end = total - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (m) {
        start = Number(m[1]);
        if (m[2]) end = Math.min(Number(m[2]), total - 1);
        if (start >= total || start > end) {
          res.writeHead(416, { ...headers, "content-range": `bytes */${total}` });
          res.end();
          return;
        }
        status = 206;
        headers["content-range"] = `bytes ${start}-${end}/${total}`;
      }
    }
    const body = bytes.subarray(start, end + 1);
    res.writeHead(status, { ...headers, "content-length": String(body.length) });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    let cut = hub.cutNextDownloadAfter;
    if (cut !== null && cut < body.length) hub.cutNextDownloadAfter = null;
    else cut = null;
    send(res, body, cut);
  };

  /** Writes `body` in pieces (paced when `bytesPerSecond` is set); with `cut`, drops the connection after that many bytes. */
  const send = (res: ServerResponse, body: Buffer, cut: number | null) => {
    const rate = hub.bytesPerSecond;
    const piece = rate ? Math.max(1024, Math.floor(rate / 20)) : 64 * 1024;
    const limit = cut ?? body.length;
    let off = 0;
    const next = () => {
      if (res.destroyed) return;
      if (off >= limit) {
        if (cut === null) res.end();
        else setTimeout(() => res.destroy(), 20);
        return;
      }
      const chunk = body.subarray(off, Math.min(off + piece, limit));
      off += chunk.length;
      res.write(chunk, () => (rate ? setTimeout(next, (chunk.length * 1000) / rate) : setImmediate(next)));
    };
    next();
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    hub.requests.push({
      method: req.method ?? "GET",
      path: `${url.pathname}${url.search}`,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    req.resume();
    if (hub.requiredToken && req.headers.authorization !== `Bearer ${hub.requiredToken}`) {
      const message = req.headers.authorization
        ? "Invalid credentials in Authorization header"
        : "Access to this model is restricted. You must be authenticated to access it.";
      sendJson(res, 401, { error: message }, { "x-error-code": "GatedRepo" });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(res, 405, { error: "Method not allowed" });
      return;
    }
    let parts: string[];
    try {
      parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    } catch {
      sendJson(res, 400, { error: "Bad path" });
      return;
    }
    if (parts[0] === "api" && parts[1] === "models" && parts.length === 2) {
      sendJson(res, 200, search(url.searchParams));
      return;
    }
    if (parts[0] === "api" && parts[1] === "models" && parts.length === 4) {
      const repo = `${parts[2]}/${parts[3]}`;
      const files = hub.repos.get(repo);
      if (!files) sendJson(res, 404, { error: "Repository not found" }, { "x-error-code": "RepoNotFound" });
      else sendJson(res, 200, repoInfo(repo, files, url.searchParams.get("blobs") === "true"));
      return;
    }
    if (parts.length >= 5 && parts[2] === "resolve" && parts[3] === "main") {
      const repo = `${parts[0]}/${parts[1]}`;
      if (!hub.repos.has(repo)) {
        sendJson(res, 404, { error: "Repository not found" }, { "x-error-code": "RepoNotFound" });
        return;
      }
      serveFile(req, res, repo, parts.slice(4).join("/"));
      return;
    }
    sendJson(res, 404, { error: "Not found" });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return hub;
}
