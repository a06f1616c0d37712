/**
 * A node's models: every GGUF in its models dir, loaded on demand and
 * unloaded when the room is needed or they sit idle. The engine loads and
 * unloads; this decides when.
 *
 * - A model is `available` (on disk), `loading`, `ready`, `unloading`, or
 *   `failed` (with the reason: not a valid GGUF, did not load).
 * - One load per model at a time: requests for a model that is loading wait
 *   for that load. Loads run one after another, so two of them never plan
 *   their room from the same figures.
 * - Before a load, the least recently used idle models are unloaded until the
 *   count (`maxLoaded`) and the memory (`budgetBytes`) allow it
 *   (lib/inference/eviction.ts); a model serving a request, or pinned, never.
 * - Pinned models are loaded at start and never unloaded; with `idleMs`, a
 *   model no request used for that long is unloaded.
 */
import fs from "node:fs";
import { apiError } from "../openai/errors";
import { planEviction, type LoadedSlot } from "./eviction";
import { findModelFiles } from "./model-files";
import type { CatalogEntry, Engine } from "./types";

export type { CatalogEntry, ModelState } from "./types";

export interface ManagerOptions {
  modelsDir: string;
  maxLoaded: number | null;
  /** null: the engine's default (free memory at start less a margin), or no limit. */
  budgetBytes: number | null;
  idleMs: number | null;
  pinned: string[];
  loadAtStart: "fit" | "pinned";
  log: (msg: string) => void;
  /** A model's state changed (the node tells the routers at once). */
  onChange: () => void;
}

interface Entry extends CatalogEntry {
  path: string;
  mtimeMs: number;
  /** The load in progress. */
  loading: Promise<void> | null;
  /** The unload in progress (settles either way): a load of the model waits for it. */
  unloading: Promise<void> | null;
}

export class ModelManager {
  private readonly entries = new Map<string, Entry>();
  private budget: number | null = null;
  /** Loads (with their evictions) one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** The scan in progress: scans run one at a time (two at once would each make an entry for a new file). */
  private scanning: Promise<void> | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly opts: ManagerOptions,
  ) {}

  get limits(): { maxLoaded: number | null; budgetBytes: number | null } {
    return { maxLoaded: this.opts.maxLoaded, budgetBytes: this.budget };
  }

  /** Reads the models dir, sets the budget, then loads the pinned models and (with `fit`) what fits besides. */
  async start(): Promise<void> {
    this.budget = this.opts.budgetBytes ?? (await this.engine.defaultMemoryBudget());
    await this.scan();
    for (const id of this.opts.pinned) {
      if (!this.entries.has(id)) this.opts.log(`pinned model '${id}' is not in ${this.opts.modelsDir}`);
    }
    const order = [...this.entries.values()].sort((a, b) => Number(b.pinned) - Number(a.pinned));
    for (const e of order) {
      if (this.stopped) return;
      if (e.state !== "available") continue;
      if (!e.pinned && (this.opts.loadAtStart === "pinned" || !this.fitsWithoutEviction(e))) continue;
      await this.ensure(e.id).catch((err: Error) => this.opts.log(`could not load '${e.id}': ${err.message}`));
    }
  }

  /** Finds model files added or removed since the last look (a removed file that is loaded stays until unloaded). */
  async scan(): Promise<void> {
    // one after another: a download's scan and the heartbeat's could otherwise both add a new file, the later
    // entry replacing the one a load was already running on (the engine would hold a model the catalog calls unloaded)
    while (this.scanning) await this.scanning;
    this.scanning = this.scanOnce().finally(() => (this.scanning = null));
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const seen = new Set<string>();
    for (const [id, file] of findModelFiles(this.opts.modelsDir)) {
      seen.add(id);
      let stat: fs.Stats;
      try {
        stat = fs.statSync(file);
      } catch {
        continue;
      }
      const known = this.entries.get(id);
      // a file replaced on disk is read again (a failed one may be good now)
      if (
        known &&
        (known.mtimeMs === stat.mtimeMs ||
          known.loading !== null ||
          (known.state !== "available" && known.state !== "failed"))
      )
        continue;
      const entry: Entry = {
        id,
        path: file,
        mtimeMs: stat.mtimeMs,
        sizeBytes: stat.size,
        quantization: null,
        estimatedBytes: null,
        state: "available",
        error: null,
        pinned: this.opts.pinned.includes(id),
        inUse: 0,
        memoryBytes: 0,
        lastUsedAt: null,
        loadMs: null,
        loads: known?.loads ?? 0,
        loading: null,
        unloading: null,
      };
      try {
        const facts = await this.engine.inspect(file);
        entry.quantization = facts.quantization;
        entry.estimatedBytes = facts.estimatedBytes;
      } catch (err) {
        entry.state = "failed";
        entry.error = `not a valid GGUF model file: ${(err as Error).message}`;
      }
      this.entries.set(id, entry);
      this.opts.onChange();
    }
    for (const [id, e] of this.entries) {
      if (!seen.has(id) && (e.state === "available" || e.state === "failed")) {
        this.entries.delete(id);
        this.opts.onChange();
      }
    }
  }

  catalog(): CatalogEntry[] {
    return [...this.entries.values()].map(({ path: _p, mtimeMs: _m, loading: _l, unloading: _u, ...view }) => view);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Memory the loaded (and loading) models hold. */
  usedBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.memoryBytes;
    return n;
  }

  /**
   * Takes a model for one request: loads it first if needed (waiting for a
   * load in progress), and keeps it from being unloaded until `release`.
   */
  async acquire(id: string): Promise<void> {
    for (;;) {
      await this.ensure(id);
      const e = this.entries.get(id);
      // unloaded again between the load and now (room for another): load it again
      if (e?.state === "ready") {
        e.inUse++;
        return;
      }
    }
  }

  release(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.inUse = Math.max(0, e.inUse - 1);
    e.lastUsedAt = Date.now();
  }

  /**
   * Loads a model unless it is loaded; rejects with why it cannot be (404,
   * 409, 422). A model that failed to load is not tried again unless
   * `retryFailed` (an operator's load), or its file changed.
   */
  ensure(id: string, retryFailed = false): Promise<void> {
    const e = this.entries.get(id);
    if (!e)
      return Promise.reject(
        apiError(404, `The model '${id}' is not on this node.`, "model_not_found", { param: "model" }),
      );
    if (e.state === "ready") return Promise.resolve();
    if (e.loading) return e.loading;
    if (e.state === "failed" && (e.estimatedBytes === null || !retryFailed)) {
      const code = e.estimatedBytes === null ? "invalid_model_file" : "model_load_failed";
      return Promise.reject(apiError(422, `The model '${id}' cannot be loaded here: ${e.error}`, code));
    }
    const load = this.queue.then(() => this.load(e));
    e.loading = load.finally(() => (e.loading = null));
    this.queue = e.loading.catch(() => undefined);
    return e.loading;
  }

  /** Unloads a model now; 409 while it serves, or when it is pinned or not loaded. */
  async unload(id: string): Promise<void> {
    const e = this.entries.get(id);
    if (!e) throw apiError(404, `The model '${id}' is not on this node.`, "model_not_found", { param: "model" });
    if (e.pinned) throw apiError(409, `The model '${id}' is pinned (LLM_NODE_PINNED_MODELS).`, "model_pinned");
    if (e.state !== "ready") throw apiError(409, `The model '${id}' is ${e.state}, not loaded.`, "model_not_loaded");
    if (this.busy(e)) throw apiError(409, `The model '${id}' is serving requests.`, "model_busy");
    await this.unloadEntry(e, "asked");
  }

  /** Unloads the models no request used for `idleMs`. */
  async sweepIdle(now = Date.now()): Promise<void> {
    if (this.opts.idleMs === null) return;
    for (const e of this.entries.values()) {
      const since = e.lastUsedAt ?? now;
      if (e.state === "ready" && !e.pinned && !this.busy(e) && now - since >= this.opts.idleMs) {
        await this.unloadEntry(e, `idle for ${Math.round((now - since) / 1000)} s`).catch(() => undefined);
      }
    }
  }

  /** A file that arrived (a download): known at once, and loaded. */
  async add(id: string): Promise<void> {
    await this.scan();
    await this.ensure(id);
  }

  /** Forgets a model whose file is being deleted, unloading it first (409 while it serves). */
  async remove(id: string): Promise<void> {
    const e = this.entries.get(id);
    if (!e) throw apiError(404, `The model '${id}' is not on this node.`, "model_not_found");
    if (this.busy(e) || e.loading) throw apiError(409, `The model '${id}' is serving requests.`, "model_busy");
    // what the engine holds, whatever the entry says
    if (this.engine.models().some((m) => m.id === id)) await this.engine.unloadModel(id);
    this.entries.delete(id);
    this.opts.onChange();
  }

  stop(): void {
    this.stopped = true;
  }

  private busy(e: Entry): boolean {
    const load = this.engine.load().find((l) => l.id === e.id);
    return e.inUse > 0 || (load !== undefined && load.active + load.queued > 0);
  }

  private slots(): LoadedSlot[] {
    return [...this.entries.values()]
      .filter((e) => e.memoryBytes > 0 || e.state === "ready" || e.state === "loading")
      .map((e) => ({
        id: e.id,
        bytes: e.memoryBytes,
        busy: this.busy(e),
        pinned: e.pinned,
        settled: e.state === "ready",
        lastUsedAt: e.lastUsedAt ?? 0,
      }));
  }

  private fitsWithoutEviction(e: Entry): boolean {
    const plan = planEviction(this.slots(), e.estimatedBytes ?? 0, this.limits);
    return plan !== null && plan.length === 0;
  }

  private async load(e: Entry): Promise<void> {
    if (this.stopped) throw apiError(503, "The node is stopping.", "node_leaving");
    // an unload of this model still running (idle, or asked for) ends first: the engine holds it until then
    if (e.unloading) await e.unloading;
    if (e.state === "ready") return;
    const need = e.estimatedBytes ?? 0;
    // planned again after each unload: a model chosen may have taken a request meanwhile
    for (;;) {
      const plan = planEviction(
        this.slots().filter((s) => s.id !== e.id),
        need,
        this.limits,
      );
      if (plan === null) {
        throw apiError(
          409,
          `The model '${e.id}' (about ${mb(need)}) does not fit: ${this.roomText()}, and the models that hold it are ` +
            "serving requests or pinned.",
          "model_does_not_fit",
          { param: "model" },
        );
      }
      if (plan.length === 0) break;
      await this.unloadEntry(this.entries.get(plan[0])!, `room for '${e.id}'`);
    }
    e.state = "loading";
    e.error = null;
    e.memoryBytes = need;
    this.opts.onChange();
    const t0 = performance.now();
    try {
      await this.engine.loadModel(e.id, e.path);
    } catch (err) {
      e.state = "failed";
      e.memoryBytes = 0;
      e.error = (err as Error).message;
      this.opts.log(`could not load '${e.id}': ${e.error}`);
      this.opts.onChange();
      throw apiError(422, `The model '${e.id}' failed to load on this node: ${e.error}`, "model_load_failed");
    }
    e.state = "ready";
    e.loadMs = Math.round(performance.now() - t0);
    e.loads++;
    // a load counts as a use: the idle time and the least-recently-used order start from it
    e.lastUsedAt = Date.now();
    this.opts.log(`loaded '${e.id}' in ${e.loadMs} ms (${this.roomText()})`);
    this.opts.onChange();
  }

  private unloadEntry(e: Entry, why: string): Promise<void> {
    const done = this.runUnload(e, why);
    const settled: Promise<void> = done
      .catch(() => undefined)
      .then(() => {
        if (e.unloading === settled) e.unloading = null;
      });
    e.unloading = settled;
    return done;
  }

  private async runUnload(e: Entry, why: string): Promise<void> {
    e.state = "unloading";
    this.opts.onChange();
    try {
      await this.engine.unloadModel(e.id);
    } catch (err) {
      e.state = "ready";
      this.opts.onChange();
      throw err;
    }
    e.state = "available";
    e.memoryBytes = 0;
    e.lastUsedAt = null;
    this.opts.log(`unloaded '${e.id}' (${why})`);
    this.opts.onChange();
  }

  private roomText(): string {
    const loaded = [...this.entries.values()].filter((e) => e.state === "ready" || e.state === "loading").length;
    const count = this.opts.maxLoaded === null ? `${loaded} loaded` : `${loaded} of ${this.opts.maxLoaded} loaded`;
    const memory = this.budget === null ? "" : `, ${mb(this.usedBytes())} of ${mb(this.budget)} budget used`;
    return count + memory;
  }
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MB`;
}
