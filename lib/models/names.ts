/**
 * Names for models fetched from the Hugging Face Hub: repository references as
 * users paste them, file paths inside a repository or the models dir (never
 * trusted: every path is checked before it touches the disk), and the catalog
 * id an inference node uses for a model (its path under the models dir,
 * without `.gguf`).
 */
import path from "node:path";
import { apiError } from "../openai/errors";

const REPO_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
const MAX_SEGMENT = 255;
const MAX_PATH = 512;
const MAX_REPO = 200;
/** Hosts that are always the Hub, whatever the configured base URL. */
const HUB_HOSTS = new Set(["huggingface.co", "www.huggingface.co", "hf.co"]);

export interface RepoRef {
  repo: string;
  file?: string;
}

const badRepo = (message: string) => apiError(400, message, "invalid_repo", { param: "repo" });
const badFile = (message: string) => apiError(400, message, "invalid_file", { param: "file" });

/** Whether `repo` is a well-formed `org/name`. */
export function isRepoName(repo: string): boolean {
  return repo.length <= MAX_REPO && REPO_RE.test(repo) && !repo.includes("..");
}

/**
 * Parses `org/repo`, or a Hub (or mirror, under `hfBaseUrl`) URL of a repo,
 * or of a file in it (`/blob/main/...`, `/resolve/main/...`).
 */
export function parseRepoRef(input: string, hfBaseUrl: string): RepoRef {
  let text = input.trim();
  if (/^(www\.)?(huggingface\.co|hf\.co)\//i.test(text)) text = `https://${text}`;
  if (!text) throw badRepo("Name a Hugging Face repository, e.g. 'org/model-GGUF'.");
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const bare = text.replace(/\/+$/, "");
    if (!isRepoName(bare)) throw badRepo(`'${clip(text)}' is not a repository name of the form 'org/name'.`);
    return { repo: bare };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badRepo(`'${clip(text)}' is not a valid URL.`);
  }
  const rest = pathUnder(url, hfBaseUrl);
  if (rest === null) throw badRepo(`'${clip(text)}' is not a Hugging Face Hub URL.`);
  const parts = rest.replace(/\/+$/, "").split("/");
  if (parts.some((p) => p === "")) throw badRepo(`'${clip(text)}' has an empty path segment.`);
  let decoded: string[];
  try {
    decoded = parts.map((p) => decodeURIComponent(p));
  } catch {
    throw badRepo(`'${clip(text)}' is not a valid URL.`);
  }
  const [org, name, kind, revision, ...file] = decoded;
  const repo = `${org ?? ""}/${name ?? ""}`;
  if (!isRepoName(repo)) throw badRepo(`'${clip(text)}' does not name a repository.`);
  if (kind === undefined) return { repo };
  if (kind !== "blob" && kind !== "resolve" && kind !== "tree")
    throw badRepo(`'${clip(text)}' is not a repository or file URL.`);
  if (revision !== "main") throw badRepo(`Only the 'main' revision is supported, not '${clip(revision ?? "")}'.`);
  if (kind === "tree") return { repo };
  if (file.length === 0) throw badRepo(`'${clip(text)}' names no file.`);
  return { repo, file: safeRelativePath(file.join("/")) };
}

/** The path of `url` below the Hub (or the mirror at `hfBaseUrl`), without its leading slash; null when elsewhere. */
function pathUnder(url: URL, hfBaseUrl: string): string | null {
  if ((url.protocol === "https:" || url.protocol === "http:") && HUB_HOSTS.has(url.hostname.toLowerCase()))
    return url.pathname.replace(/^\/+/, "");
  let base: URL;
  try {
    base = new URL(hfBaseUrl);
  } catch {
    return null;
  }
  if (url.origin !== base.origin) return null;
  const prefix = base.pathname.replace(/\/+$/, "");
  if (prefix && url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) return null;
  return url.pathname.slice(prefix.length).replace(/^\/+/, "");
}

/**
 * Checks a relative file path (inside a repository or the models dir):
 * segments of `[A-Za-z0-9._-]`, no empty, `.` or `..` segment, not absolute.
 * Returns it unchanged; throws a 400 (param "file") otherwise.
 */
export function safeRelativePath(p: string): string {
  if (typeof p !== "string" || p.length === 0) throw badFile("The file path is empty.");
  if (p.length > MAX_PATH) throw badFile(`The file path is longer than ${MAX_PATH} characters.`);
  if (p.includes("\0")) throw badFile("The file path contains a NUL character.");
  if (p.includes("\\")) throw badFile("The file path contains a backslash.");
  if (p.startsWith("/")) throw badFile("The file path must be relative.");
  for (const seg of p.split("/")) {
    if (seg === "" || seg === "." || seg === "..")
      throw badFile(`The file path '${clip(p)}' has an empty, '.' or '..' segment.`);
    if (seg.length > MAX_SEGMENT) throw badFile(`A segment of the file path is longer than ${MAX_SEGMENT} characters.`);
    if (!SEGMENT_RE.test(seg))
      throw badFile(`The file path '${clip(p)}' may only contain letters, digits, '.', '_', '-' and '/'.`);
  }
  return p;
}

/** The catalog id of a GGUF file of a Hub repository: `hf/<repo>/<file without .gguf>`. */
export function catalogId(repo: string, file: string): string {
  if (!isRepoName(repo)) throw badRepo(`'${clip(repo)}' is not a repository name of the form 'org/name'.`);
  safeRelativePath(file);
  if (!/\.gguf$/i.test(file)) throw badFile(`'${clip(file)}' is not a .gguf file.`);
  const id = `hf/${repo}/${file.slice(0, -".gguf".length)}`;
  safeRelativePath(`${id}.gguf`);
  return id;
}

/** The file of a catalog id, relative to the models dir: `<id>.gguf` (checked). */
export function modelFileFor(id: string): string {
  return safeRelativePath(`${id}.gguf`);
}

/** `rel` resolved inside `dir`; throws a 400 unless the result lies strictly inside `dir`. */
export function resolveInside(dir: string, rel: string): string {
  if (typeof rel !== "string" || rel.includes("\0")) throw badFile("The file path contains a NUL character.");
  const root = path.resolve(dir);
  const abs = path.resolve(root, rel);
  const relative = path.relative(root, abs);
  const escapes =
    relative === "" || relative === ".." || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
  if (escapes) throw badFile(`The file path '${clip(rel)}' is not inside the models directory.`);
  return abs;
}

function clip(s: string): string {
  const printable = s.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 120 ? `${printable.slice(0, 117)}...` : printable;
}
