/**
 * Turning a Hugging Face repository without GGUF (safetensors or PyTorch
 * weights) into one GGUF file with llama.cpp's `convert_hf_to_gguf.py`: which
 * files the converter needs, fetching them (the same checked, resumable
 * download as the nodes use), running the script (no shell, arguments as an
 * array, cancellable), and the SHA-256 and size of what it wrote.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CONVERT_OUTTYPES, storageConfig, type ConvertConfig } from "../config";
import { apiError } from "../openai/errors";
import { downloadFile } from "./download";
import { fileUrl, type Hub, type HubFile } from "./hub";
import { catalogId, resolveInside } from "./names";

/** `--outtype` values convert_hf_to_gguf.py accepts (named in lib/config/spec.ts, LLM_ROUTER_CONVERT_OUTTYPE's). */
export const OUTTYPES: string[] = [...CONVERT_OUTTYPES];

/** LLM_ROUTER_CONVERT_SCRIPT, _PYTHON and _OUTTYPE, read through lib/config. */
export { convertConfig, type ConvertConfig } from "../config";

export const INSTALL_HINT =
  "Converting needs llama.cpp's convert_hf_to_gguf.py: get llama.cpp (git clone https://github.com/ggml-org/llama.cpp), " +
  "install its Python requirements (pip install -r llama.cpp/requirements.txt), " +
  "and set LLM_ROUTER_CONVERT_SCRIPT to the path of convert_hf_to_gguf.py on the router.";

/** Throws the 422 an operator reads when conversion cannot run here; returns the script otherwise. */
export function requireScript(cfg: ConvertConfig, repo: string): string {
  if (!cfg.script)
    throw apiError(422, `${repo} has weights but no GGUF. ${INSTALL_HINT}`, "conversion_required", { param: "repo" });
  if (!fs.existsSync(cfg.script))
    throw apiError(
      422,
      `${repo} has weights but no GGUF, and LLM_ROUTER_CONVERT_SCRIPT (${cfg.script}) does not exist. ${INSTALL_HINT}`,
      "conversion_required",
      { param: "repo" },
    );
  return cfg.script;
}

/** Where conversions work (`convert/<task>`) and keep their output (`converted/<id>.gguf`): the data dir. */
export function conversionRoot(): string {
  const dir = storageConfig().dataDir;
  return dir === ":memory:" ? path.join(os.tmpdir(), "llm-router") : dir;
}

/** The catalog id of a repository converted to `outtype`: `hf/<repo>/<name>-<outtype>`. */
export function conversionId(repo: string, outtype: string): string {
  return catalogId(repo, `${repo.split("/")[1]}-${outtype}.gguf`);
}

const WEIGHTS = /\.safetensors$/i;
const TORCH = /\.(bin|pt|pth)$/i;
/** Training leftovers that are not model weights. */
const NOT_WEIGHTS = /^(training_args\.bin|optimizer\.pt|scheduler\.pt|rng_state.*\.pth)$/i;
/** Config, tokenizer and weight index files. */
const SIDE_FILES = /\.(json|txt|model|tiktoken)$/i;

/**
 * The files of a repository the converter reads: top-level config and
 * tokenizer files, and the weights (safetensors when there are any, else the
 * PyTorch files). Files in subfolders (e.g. `original/`) are not needed.
 */
export function conversionFiles(files: HubFile[]): HubFile[] {
  const top = files.filter((f) => !f.path.includes("/"));
  const safetensors = top.filter((f) => WEIGHTS.test(f.path));
  const weights = safetensors.length ? safetensors : top.filter((f) => TORCH.test(f.path) && !NOT_WEIGHTS.test(f.path));
  if (!weights.length) return [];
  return [...top.filter((f) => SIDE_FILES.test(f.path)), ...weights];
}

export type ConvertStage = "downloading" | "converting";

export interface ConvertProgress {
  stage: ConvertStage;
  bytes: number;
  total: number | null;
  rate: number;
  /** The last line the script wrote. */
  detail: string | null;
}

export interface ConvertOptions {
  hub: Hub;
  repo: string;
  files: HubFile[];
  python: string;
  script: string;
  outtype: string;
  /** Scratch dir of this task: fetched files (kept across tries) and the script's output. */
  workDir: string;
  /** Where the finished GGUF goes (its folder is created). */
  outFile: string;
  signal: AbortSignal;
  onProgress?: (p: ConvertProgress) => void;
}

export interface ConvertResult {
  path: string;
  size: number;
  sha256: string;
}

const TAIL_BYTES = 8192;
const KILL_GRACE_MS = 5_000;

/** Fetches what the converter needs, runs it, and moves the GGUF onto `outFile`. */
export async function convertRepo(opts: ConvertOptions): Promise<ConvertResult> {
  const src = path.join(opts.workDir, "src");
  await fetchFiles(opts, src);
  opts.signal.throwIfAborted();
  const tmp = path.join(opts.workDir, "out.gguf");
  await fs.promises.rm(tmp, { force: true });
  await runScript(opts, src, tmp);
  opts.signal.throwIfAborted();
  const { size, sha256, magic } = await digest(tmp);
  if (!magic) throw apiError(422, "The converter did not write a GGUF file.", "conversion_failed");
  await fs.promises.mkdir(path.dirname(opts.outFile), { recursive: true });
  await fs.promises.rm(opts.outFile, { force: true });
  try {
    await fs.promises.rename(tmp, opts.outFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    await fs.promises.copyFile(tmp, opts.outFile);
  }
  await fs.promises.rm(opts.workDir, { recursive: true, force: true });
  return { path: opts.outFile, size, sha256 };
}

async function fetchFiles(opts: ConvertOptions, src: string): Promise<void> {
  const total = opts.files.reduce((n, f) => n + (f.size ?? 0), 0);
  let done = 0;
  const report = (bytes: number, rate: number) =>
    opts.onProgress?.({ stage: "downloading", bytes, total, rate, detail: null });
  report(0, 0);
  for (const f of opts.files) {
    const target = resolveInside(src, f.path);
    const have = await fs.promises.stat(target).catch(() => null);
    if (!have || (f.size !== null && have.size !== f.size)) {
      await fs.promises.rm(target, { force: true });
      await downloadFile({
        url: fileUrl(opts.hub, opts.repo, f.path),
        token: opts.hub.token,
        destDir: src,
        relPath: f.path,
        sha256: f.sha256,
        size: f.size,
        signal: opts.signal,
        onProgress: (p) => report(done + p.bytes, p.rate),
      });
    }
    done += f.size ?? (await fs.promises.stat(target)).size;
    report(done, 0);
  }
}

/** Runs `python script src --outfile out --outtype T`; rejects with the tail of its output when it fails. */
function runScript(opts: ConvertOptions, src: string, out: string): Promise<void> {
  const args = [opts.script, src, "--outfile", out, "--outtype", opts.outtype];
  return new Promise((resolve, reject) => {
    const child = spawn(opts.python, args, { stdio: ["ignore", "pipe", "pipe"], shell: false });
    let tail = "";
    let killTimer: NodeJS.Timeout | null = null;
    const onData = (b: Buffer) => {
      tail = (tail + b.toString("utf8")).slice(-TAIL_BYTES);
      const last = lastLines(tail, 1);
      if (last) opts.onProgress?.({ stage: "converting", bytes: 0, total: null, rate: 0, detail: last.slice(0, 300) });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const onAbort = () => {
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
    };
    opts.signal.addEventListener("abort", onAbort, { once: true });
    opts.onProgress?.({ stage: "converting", bytes: 0, total: null, rate: 0, detail: null });
    let spawnError: Error | null = null;
    child.once("error", (err) => (spawnError = err));
    child.once("close", (code, signal) => {
      opts.signal.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (opts.signal.aborted) return reject(opts.signal.reason);
      if (spawnError)
        return reject(
          apiError(
            500,
            `Could not run ${opts.python} (LLM_ROUTER_CONVERT_PYTHON): ${spawnError.message}`,
            "conversion_failed",
          ),
        );
      if (code === 0) return resolve();
      const how = code !== null ? `exit code ${code}` : `signal ${signal}`;
      const why = lastLines(tail, 6) || "(no output)";
      reject(apiError(422, `${path.basename(opts.script)} failed (${how}): ${why}`, "conversion_failed"));
    });
  });
}

/** The last `n` non-empty lines of `text`, joined with " | ". */
export function lastLines(text: string, n: number): string {
  const lines = text
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.slice(-n).join(" | ").slice(-2000);
}

async function digest(file: string): Promise<{ size: number; sha256: string; magic: boolean }> {
  const hash = createHash("sha256");
  let size = 0;
  let head = Buffer.alloc(0);
  try {
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
      hash.update(chunk);
      size += chunk.length;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw apiError(422, "The converter exited without writing its output file.", "conversion_failed");
    throw err;
  }
  return { size, sha256: hash.digest("hex"), magic: head.toString("ascii") === "GGUF" };
}
