/**
 * Downloads one model file into the models dir, the way an inference node
 * fetches a model itself: into `<target>.part`, resuming with `Range` after a
 * dropped connection or a 5xx, checked against the expected size and SHA-256
 * and the GGUF magic, then renamed onto the target in one step. A `.gguf` that
 * is not complete and verified is never left behind.
 */
import { createHash, type Hash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { apiError } from "../openai/errors";
import { resolveInside, safeRelativePath } from "./names";

/** A type literal (not an interface), so that it passes as a `Record<string, unknown>`. */
export type DownloadProgress = {
  bytes: number;
  total: number | null;
  /** Bytes per second, over the last interval. */
  rate: number;
};

/**
 * Where the bytes come from when not from a URL (a converted model on the
 * router, read over the cluster): the file from `offset` on. An error it (or
 * its body) throws is retried, unless it is a client error (4xx other than
 * 408/429) or the signal was aborted.
 */
export type ByteSource = (
  offset: number,
  signal: AbortSignal,
) => Promise<{ total: number | null; body: AsyncIterable<Uint8Array> }>;

export interface DownloadOptions {
  /** An HTTP(S) URL (with Range support for resume); or `source`. */
  url?: string;
  source?: ByteSource;
  token?: string;
  /** The models dir. */
  destDir: string;
  /** Checked relative path, e.g. "hf/org/repo/model-Q4_K_M.gguf". */
  relPath: string;
  /** Expected SHA-256, hex. */
  sha256: string | null;
  /** Expected bytes. */
  size: number | null;
  signal: AbortSignal;
  /** Called at most about 4 times a second, and once at the end. */
  onProgress?: (p: DownloadProgress) => void;
  /** Failed tries in a row (no bytes received) before giving up; default 5. */
  retries?: number;
  /** First wait between tries, doubling; default 500. */
  backoffMs?: number;
  /** Free bytes to keep on the disk after the file; default 0. */
  minFreeBytes?: number;
  /** A try that receives nothing for this long is dropped and retried; default 60 s. */
  stallTimeoutMs?: number;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
}

const PROGRESS_MS = 250;
const MAX_BACKOFF_MS = 30_000;
const GGUF_MAGIC = Buffer.from("GGUF", "ascii");

/** Targets being downloaded by this process. */
const active = new Set<string>();

/** A failure worth another try (dropped connection, 5xx, stall). */
class Retryable extends Error {}

interface State {
  fh: fs.promises.FileHandle;
  hash: Hash;
  bytes: number;
  head: Buffer;
}

export async function downloadFile(opts: DownloadOptions): Promise<DownloadResult> {
  const rel = safeRelativePath(opts.relPath);
  const target = resolveInside(opts.destDir, rel);
  const part = `${target}.part`;
  const expectedSha = opts.sha256?.toLowerCase() ?? null;
  if (expectedSha !== null && !/^[0-9a-f]{64}$/.test(expectedSha))
    throw apiError(400, "The expected SHA-256 is not 64 hex digits.", "invalid_request", { param: "sha256" });
  if (fs.existsSync(target)) throw apiError(409, `The model file ${rel} already exists.`, "model_exists");
  if (active.has(target)) throw apiError(409, `The model file ${rel} is already being downloaded.`, "model_exists");
  opts.signal.throwIfAborted();
  active.add(target);
  let state: State | null = null;
  try {
    await fs.promises.mkdir(opts.destDir, { recursive: true });
    await checkSpace(opts.destDir, opts.size ?? 0, opts.minFreeBytes ?? 0);
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    state = { fh: await fs.promises.open(part, "w"), hash: createHash("sha256"), bytes: 0, head: Buffer.alloc(0) };
    await fetchAll(opts, state, rel);
    const digest = state.hash.digest("hex");
    await state.fh.sync();
    await state.fh.close();
    if (opts.size !== null && state.bytes !== opts.size)
      throw apiError(422, `${rel}: got ${state.bytes} bytes, expected ${opts.size}.`, "size_mismatch");
    if (expectedSha !== null && digest !== expectedSha)
      throw apiError(422, `${rel}: the SHA-256 of the download does not match the Hub's.`, "checksum_mismatch");
    if (wantsGguf(rel) && !(await startsWithMagic(part))) throw apiError(422, `${rel} is not a GGUF file.`, "not_gguf");
    opts.signal.throwIfAborted();
    if (fs.existsSync(target)) throw apiError(409, `The model file ${rel} already exists.`, "model_exists");
    await fs.promises.rename(part, target);
    const bytes = state.bytes;
    state = null;
    return { path: target, bytes, sha256: digest };
  } catch (err) {
    if (state) {
      await state.fh.close().catch(() => undefined);
      await fs.promises.rm(part, { force: true }).catch(() => undefined);
    }
    if (opts.signal.aborted) throw opts.signal.reason;
    if ((err as NodeJS.ErrnoException).code === "ENOSPC")
      throw apiError(507, `The disk filled up while downloading ${rel}.`, "insufficient_storage");
    throw err;
  } finally {
    active.delete(target);
  }
}

async function checkSpace(dir: string, size: number, keep: number): Promise<void> {
  const st = await fs.promises.statfs(dir);
  const free = Number(st.bavail) * Number(st.bsize);
  if (free < size + keep) {
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
    throw apiError(
      507,
      `Not enough disk space for the model: it needs ${gib(size + keep)}, ${gib(free)} is free.`,
      "insufficient_storage",
    );
  }
}

const wantsGguf = (rel: string) => /\.gguf$/i.test(rel);

async function startsWithMagic(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, "r");
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return bytesRead === 4 && buf.equals(GGUF_MAGIC);
  } finally {
    await fh.close();
  }
}

/** Tries until the whole file is in `state`, or gives up. */
async function fetchAll(opts: DownloadOptions, state: State, rel: string): Promise<void> {
  const retries = opts.retries ?? 5;
  const backoff = opts.backoffMs ?? 500;
  const progress = progressReporter(opts.onProgress);
  let failures = 0;
  for (;;) {
    const before = state.bytes;
    try {
      const total = await fetchOnce(opts, state, rel, progress);
      progress(state.bytes, total, true);
      return;
    } catch (err) {
      if (opts.signal.aborted || !(err instanceof Retryable)) throw err;
      failures = state.bytes > before ? 1 : failures + 1;
      if (failures > retries)
        throw apiError(502, `Downloading ${rel} failed after ${retries + 1} tries: ${err.message}`, "download_failed");
      await sleep(Math.min(backoff * 2 ** (failures - 1), MAX_BACKOFF_MS), undefined, { signal: opts.signal });
    }
  }
}

/** One request from `state.bytes` on; resolves the total size once the body ended complete. */
async function fetchOnce(
  opts: DownloadOptions,
  state: State,
  rel: string,
  progress: (bytes: number, total: number | null, final?: boolean) => void,
): Promise<number | null> {
  const stall = new AbortController();
  const signal = AbortSignal.any([opts.signal, stall.signal]);
  let timer = setTimeout(() => stall.abort(), opts.stallTimeoutMs ?? 60_000);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), opts.stallTimeoutMs ?? 60_000);
  };
  try {
    const opened = opts.source
      ? await openSource(opts, state, stall, signal)
      : await openUrl(opts, state, rel, stall, signal);
    if (opened.body === null) return opened.total; // everything was already here
    const total = opened.total;
    if (total !== null && opts.size !== null && total !== opts.size)
      throw apiError(422, `${rel}: the server offers ${total} bytes, expected ${opts.size}.`, "size_mismatch");
    const limit = total ?? opts.size;
    const it = opened.body[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await it.next();
      } catch (err) {
        throw opts.source && isFinal(err) && !stall.signal.aborted ? err : retryable(opts, stall, err);
      }
      if (next.done) break;
      touch();
      const chunk = next.value;
      const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      // our own verdicts and disk errors are final
      if (limit !== null && state.bytes + buf.length > limit)
        throw apiError(422, `${rel}: the server sent more than ${limit} bytes.`, "size_mismatch");
      await write(state, buf);
      if (wantsGguf(rel) && state.head.length < 4) {
        state.head = Buffer.concat([state.head, buf.subarray(0, 4 - state.head.length)]);
        if (state.head.length === 4 && !state.head.equals(GGUF_MAGIC))
          throw apiError(422, `${rel} is not a GGUF file.`, "not_gguf");
      }
      progress(state.bytes, limit);
    }
    if (limit !== null && state.bytes < limit)
      throw new Retryable(`the connection closed after ${state.bytes} of ${limit} bytes`);
    return limit;
  } finally {
    clearTimeout(timer);
  }
}

interface Opened {
  total: number | null;
  /** null: nothing more to read. */
  body: AsyncIterable<Uint8Array> | null;
}

async function openUrl(
  opts: DownloadOptions,
  state: State,
  rel: string,
  stall: AbortController,
  signal: AbortSignal,
): Promise<Opened> {
  if (!opts.url) throw apiError(400, "A download needs a URL or a source.", "invalid_request");
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (state.bytes > 0) headers.range = `bytes=${state.bytes}-`;
  let res: Response;
  try {
    res = await fetch(opts.url, { headers, signal, redirect: "follow" });
  } catch (err) {
    throw retryable(opts, stall, err);
  }
  const total = await startResponse(opts, state, rel, res);
  if (res.status === 416) return { total, body: null };
  return { total, body: (res.body ?? []) as unknown as AsyncIterable<Uint8Array> };
}

async function openSource(
  opts: DownloadOptions,
  state: State,
  stall: AbortController,
  signal: AbortSignal,
): Promise<Opened> {
  try {
    const got = await opts.source!(state.bytes, signal);
    return state.bytes === got.total ? { total: got.total, body: null } : got;
  } catch (err) {
    if (isFinal(err) && !opts.signal.aborted && !stall.signal.aborted) throw err;
    throw retryable(opts, stall, err);
  }
}

/** A client error from a source (4xx other than 408/429): not worth another try. */
function isFinal(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" && code >= 400 && code < 500 && code !== 408 && code !== 429;
}

function retryable(opts: DownloadOptions, stall: AbortController, err: unknown): Error {
  if (opts.signal.aborted) return err as Error;
  if (stall.signal.aborted) return new Retryable("no data arrived for too long");
  const cause = (err as { cause?: { message?: string } }).cause?.message;
  return new Retryable(cause ?? (err as Error).message);
}

/** Checks the status; truncates the part when the server starts over. Resolves the total size, when known. */
async function startResponse(opts: DownloadOptions, state: State, rel: string, res: Response): Promise<number | null> {
  const status = res.status;
  if (status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
    if (m && Number(m[1]) === state.bytes) return m[3] === "*" ? null : Number(m[3]);
    await res.body?.cancel().catch(() => undefined);
    await restart(state);
    throw new Retryable("the server resumed at the wrong offset");
  }
  if (status === 200) {
    if (state.bytes > 0) await restart(state);
    const len = res.headers.get("content-length");
    return len !== null && /^\d+$/.test(len) ? Number(len) : null;
  }
  await res.body?.cancel().catch(() => undefined);
  if (status === 416 && state.bytes > 0) {
    const m = /^bytes \*\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
    if (m && Number(m[1]) === state.bytes) return state.bytes;
    await restart(state);
    throw new Retryable("the server refused the resume range");
  }
  if (status >= 500 || status === 408 || status === 429) throw new Retryable(`the server answered ${status}`);
  if (status === 401 || status === 403)
    throw apiError(
      status,
      `The Hugging Face Hub refused the download of ${rel} (${status}). ` +
        (opts.token ? "HF_TOKEN has no access to it." : "Set HF_TOKEN to a token that can read it."),
      "hub_unauthorized",
    );
  if (status === 404) throw apiError(404, `${rel} was not found on the Hugging Face Hub.`, "hub_file_not_found");
  throw apiError(502, `The download of ${rel} failed: the server answered ${status}.`, "download_failed");
}

async function write(state: State, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await state.fh.write(buf, off, buf.length - off, state.bytes + off);
    off += bytesWritten;
  }
  state.hash.update(buf);
  state.bytes += buf.length;
}

async function restart(state: State): Promise<void> {
  await state.fh.truncate(0);
  state.hash = createHash("sha256");
  state.bytes = 0;
  state.head = Buffer.alloc(0);
}

function progressReporter(cb: DownloadOptions["onProgress"]) {
  let lastAt = Date.now();
  let lastBytes = 0;
  let rate = 0;
  return (bytes: number, total: number | null, final = false): void => {
    if (!cb) return;
    const now = Date.now();
    if (!final && now - lastAt < PROGRESS_MS) return;
    if (now > lastAt) rate = Math.max(0, Math.round(((bytes - lastBytes) * 1000) / (now - lastAt)));
    lastAt = now;
    lastBytes = bytes;
    try {
      cb({ bytes, total, rate });
    } catch {
      // a failing listener does not stop the download
    }
  };
}
