/**
 * A small Hugging Face Hub client: a repository's files (with sizes and the
 * SHA-256 of LFS files), which GGUF file to take, download URLs, and model
 * search. Works against the Hub or a mirror (`baseUrl`).
 */
import { apiError } from "../openai/errors";
import { isRepoName } from "./names";

/** Where the Hub is, and how to sign in. */
export interface Hub {
  /** e.g. https://huggingface.co (HF_BASE_URL) */
  baseUrl: string;
  /** HF_TOKEN, sent as `Authorization: Bearer` */
  token?: string;
}

export type HubOptions = Hub;

export interface HubFile {
  path: string;
  /** Bytes; null when the Hub did not say. */
  size: number | null;
  /** Lowercase hex SHA-256 of an LFS file; null for small files kept in git. */
  sha256: string | null;
}

export interface HubModel {
  id: string;
  downloads?: number;
  likes?: number;
  updated?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const SHARD_RE = /-(\d{5})-of-(\d{5})\.gguf$/i;
const WEIGHT_RE = /\.(safetensors|bin|pt|pth)$/i;

function base(hub: Hub): string {
  return hub.baseUrl.replace(/\/+$/, "");
}

function repoPath(repo: string): string {
  if (!isRepoName(repo))
    throw apiError(400, `'${repo}' is not a repository name of the form 'org/name'.`, "invalid_repo", {
      param: "repo",
    });
  return repo.split("/").map(encodeURIComponent).join("/");
}

/** Headers for a Hub request (the token, when there is one). */
export function hubHeaders(hub: Hub): Record<string, string> {
  const h: Record<string, string> = { accept: "application/json" };
  if (hub.token) h.authorization = `Bearer ${hub.token}`;
  return h;
}

async function hubGet(hub: Hub, path: string, what: string, signal?: AbortSignal): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${base(hub)}${path}`, {
      headers: hubHeaders(hub),
      signal: signal ?? AbortSignal.timeout(DEFAULT_TIMEOUT_MS),
    });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw apiError(502, `The Hugging Face Hub could not be reached: ${(err as Error).message}`, "hub_unreachable");
  }
  if (res.status === 404) {
    await res.body?.cancel().catch(() => undefined);
    throw apiError(404, `${what} was not found on the Hugging Face Hub.`, "hub_repo_not_found", { param: "repo" });
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel().catch(() => undefined);
    const hint = hub.token
      ? "The token in HF_TOKEN has no access to it (gated or private repository?)."
      : "Set HF_TOKEN to a token that can read it (gated or private repository?).";
    throw apiError(res.status, `The Hugging Face Hub refused access to ${what}. ${hint}`, "hub_unauthorized");
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw apiError(502, `The Hugging Face Hub answered ${res.status} for ${what}.`, "hub_unreachable");
  }
  try {
    return await res.json();
  } catch {
    throw apiError(502, `The Hugging Face Hub sent an answer for ${what} that is not JSON.`, "hub_unreachable");
  }
}

interface Sibling {
  rfilename?: unknown;
  size?: unknown;
  lfs?: { sha256?: unknown; oid?: unknown; size?: unknown } | null;
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null);

function sha(v: unknown): string | null {
  if (typeof v !== "string") return null;
  const hex = v.replace(/^sha256:/, "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

/** The files of a repository (`GET /api/models/{repo}?blobs=true`). */
export async function repoFiles(hub: Hub, repo: string, signal?: AbortSignal): Promise<HubFile[]> {
  const body = (await hubGet(hub, `/api/models/${repoPath(repo)}?blobs=true`, `the repository ${repo}`, signal)) as {
    siblings?: unknown;
  } | null;
  if (!body || !Array.isArray(body.siblings))
    throw apiError(502, `The Hugging Face Hub did not list the files of ${repo}.`, "hub_unreachable");
  const files: HubFile[] = [];
  for (const s of body.siblings as Sibling[]) {
    if (!s || typeof s.rfilename !== "string") continue;
    const lfs = s.lfs ?? null;
    files.push({
      path: s.rfilename,
      size: num(lfs?.size) ?? num(s.size),
      sha256: lfs ? (sha(lfs.sha256) ?? sha(lfs.oid)) : null,
    });
  }
  return files;
}

const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);
const isGguf = (p: string) => /\.gguf$/i.test(p);

/** Whether a file is one shard of a split GGUF (`-00001-of-00003.gguf`); `-00001-of-00001` is a whole file. */
export function isSplitShard(p: string): boolean {
  const m = SHARD_RE.exec(p);
  return m !== null && m[2] !== "00001";
}

function smallest(files: HubFile[]): HubFile | null {
  let best: HubFile | null = null;
  for (const f of files) if (!best || (f.size ?? Infinity) < (best.size ?? Infinity)) best = f;
  return best;
}

/**
 * Which GGUF file to take: `wanted` (its exact path, its basename, or a
 * quantization tag such as `Q8_0` in the name), else a `Q4_K_M` file, else the
 * smallest. Split GGUF shards are never taken; neither are vision projectors
 * (`mmproj`) unless named. Null when there is none.
 */
export function pickGguf(files: HubFile[], wanted?: string): HubFile | null {
  const ggufs = files.filter((f) => isGguf(f.path) && !isSplitShard(f.path));
  if (wanted) {
    const exact = ggufs.find((f) => f.path === wanted) ?? ggufs.find((f) => basename(f.path) === basename(wanted));
    if (exact) return exact;
    const tag = wanted.toLowerCase().replace(/\.gguf$/, "");
    if (!/^[a-z0-9_]+$/.test(tag)) return null;
    const tagRe = new RegExp(`(^|[-._])${tag}([-._]|$)`, "i");
    return smallest(ggufs.filter((f) => tagRe.test(basename(f.path).replace(/\.gguf$/i, ""))));
  }
  const models = ggufs.filter((f) => !/mmproj/i.test(basename(f.path)));
  const q4km = models.filter((f) => /q4_k_m/i.test(basename(f.path)));
  return smallest(q4km) ?? smallest(models);
}

/** Whether the repository has weights a converter could turn into GGUF (safetensors, PyTorch). */
export function convertibleWeights(files: HubFile[]): boolean {
  return files.some((f) => WEIGHT_RE.test(f.path));
}

/** The download URL of a file: `{base}/{repo}/resolve/main/{path}`. */
export function fileUrl(hub: Hub, repo: string, path: string): string {
  return `${base(hub)}/${repoPath(repo)}/resolve/main/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** GGUF models matching `query` (`GET /api/models?search=&filter=gguf&limit=`). */
export async function searchModels(hub: Hub, query: string, limit = 20, signal?: AbortSignal): Promise<HubModel[]> {
  const n = Math.min(Math.max(1, Math.floor(limit) || 20), 100);
  const qs = new URLSearchParams({ search: query, filter: "gguf", limit: String(n) });
  const body = await hubGet(hub, `/api/models?${qs.toString()}`, "the model search", signal);
  if (!Array.isArray(body)) throw apiError(502, "The Hugging Face Hub did not answer a model list.", "hub_unreachable");
  const out: HubModel[] = [];
  for (const m of body as Array<Record<string, unknown>>) {
    const id = m?.id ?? m?.modelId;
    if (typeof id !== "string") continue;
    const model: HubModel = { id };
    if (num(m.downloads) !== null) model.downloads = m.downloads as number;
    if (num(m.likes) !== null) model.likes = m.likes as number;
    const updated = m.lastModified ?? m.createdAt;
    if (typeof updated === "string") model.updated = updated;
    out.push(model);
  }
  return out.slice(0, n);
}
