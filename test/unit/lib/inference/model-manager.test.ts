/**
 * A node's models loaded on demand (lib/inference/model-manager.ts), with a
 * fake engine: what it loads at start, one load per model, LRU eviction within
 * the count and the memory budget, idle unloads, failures and rescans.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ModelManager, type ManagerOptions } from "../../../../lib/inference/model-manager";
import type { Engine, EngineModel, ModelFacts, ModelLoad } from "../../../../lib/inference/types";

interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise callbacks run (no timers involved). */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

const MB = 2 ** 20;

/**
 * An engine that loads nothing: it records loads and unloads, tells each
 * file's facts by model id (or throws for an id in `bad`), and can be made to
 * fail a load or hold a load/unload on a deferred promise.
 */
class FakeEngine implements Engine {
  readonly kind = "fake";
  readonly calls: string[] = [];
  readonly loaded = new Map<string, EngineModel>();
  /** Most models loaded at once, over the engine's life. */
  peakLoaded = 0;
  /** Estimated bytes by model id (default 100 MB). */
  readonly bytes = new Map<string, number>();
  readonly bad = new Set<string>();
  readonly inspected: string[] = [];
  /** A load of this id fails with this error (once per entry in the list). */
  readonly loadFailures = new Map<string, string[]>();
  /** A load/unload of this id waits for this promise first. */
  readonly loadGates = new Map<string, Promise<void>>();
  readonly unloadGates = new Map<string, Promise<void>>();
  /** An unload of this id is refused with this error (once per entry in the list). */
  readonly unloadFailures = new Map<string, string[]>();
  /** Requests running/waiting per model, as `load()` reports them. */
  readonly activity = new Map<string, { active: number; queued: number }>();
  budget: number | null = null;

  models(): EngineModel[] {
    return [...this.loaded.values()];
  }
  load(): ModelLoad[] {
    return [...this.loaded.keys()].map((id) => ({
      id,
      active: this.activity.get(id)?.active ?? 0,
      queued: this.activity.get(id)?.queued ?? 0,
      capacity: 4,
    }));
  }
  chat(): never {
    throw new Error("not in this test");
  }
  complete(): never {
    throw new Error("not in this test");
  }
  embed(): never {
    throw new Error("not in this test");
  }
  rank(): never {
    throw new Error("not in this test");
  }
  async gpuInfo() {
    return { backend: false as const, devices: [], vram: null };
  }
  async inspect(file: string): Promise<ModelFacts> {
    const id = path.basename(file, ".gguf");
    this.inspected.push(id);
    if (this.bad.has(id)) throw new Error("bad magic");
    return { quantization: "Q4_K_M", estimatedBytes: this.bytes.get(id) ?? 100 * MB };
  }
  async defaultMemoryBudget(): Promise<number | null> {
    return this.budget;
  }
  async loadModel(id: string, file: string): Promise<EngineModel> {
    this.calls.push(`load ${id}`);
    await this.loadGates.get(id);
    const failure = this.loadFailures.get(id)?.shift();
    if (failure) throw new Error(failure);
    if (this.loaded.has(id)) throw new Error(`'${id}' is loaded already`);
    const m = { id, path: file, sizeBytes: 1, contextSize: 2048, parallel: 4 };
    this.loaded.set(id, m);
    this.peakLoaded = Math.max(this.peakLoaded, this.loaded.size);
    return m;
  }
  async unloadModel(id: string): Promise<void> {
    this.calls.push(`unload ${id}`);
    await this.unloadGates.get(id);
    const failure = this.unloadFailures.get(id)?.shift();
    if (failure) throw new Error(failure);
    if (!this.loaded.has(id)) throw new Error(`'${id}' is not loaded`);
    this.loaded.delete(id);
  }
  async dispose(): Promise<void> {}
  /** Just the loads, or just the unloads, in order. */
  loads(): string[] {
    return this.calls.filter((c) => c.startsWith("load ")).map((c) => c.slice(5));
  }
  unloads(): string[] {
    return this.calls.filter((c) => c.startsWith("unload ")).map((c) => c.slice(7));
  }
}

let dir: string;
let clock: number;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "model-manager-"));
  clock = 1_000_000;
  jest.spyOn(Date, "now").mockImplementation(() => clock);
});

afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

function writeFile(id: string, content = "GGUF"): string {
  const file = path.join(dir, `${id}.gguf`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

function setup(ids: string[], opts: Partial<ManagerOptions> = {}, engine = new FakeEngine()) {
  for (const id of ids) writeFile(id);
  const logs: string[] = [];
  const onChange = jest.fn();
  const manager = new ModelManager(engine, {
    modelsDir: dir,
    maxLoaded: null,
    budgetBytes: null,
    idleMs: null,
    pinned: [],
    loadAtStart: "pinned",
    log: (m) => logs.push(m),
    onChange,
    ...opts,
  });
  const state = (id: string) => manager.catalog().find((c) => c.id === id)?.state;
  const entry = (id: string) => manager.catalog().find((c) => c.id === id)!;
  const ready = () =>
    manager
      .catalog()
      .filter((c) => c.state === "ready")
      .map((c) => c.id)
      .sort();
  return { engine, manager, logs, onChange, state, entry, ready };
}

/** One request on `id`: acquire, then release `ms` later on the fake clock. */
async function use(manager: ModelManager, id: string, ms = 10): Promise<void> {
  await manager.acquire(id);
  clock += ms;
  manager.release(id);
  clock += 1;
}

describe("ModelManager: start", () => {
  test('"fit" loads the pinned models first, then in name order what fits without unloading anything', async () => {
    const engine = new FakeEngine();
    for (const [id, mb] of Object.entries({ a: 300, b: 400, c: 200, p: 400 })) engine.bytes.set(id, mb * MB);
    const { manager, ready, logs } = setup(
      ["a", "b", "c", "p"],
      { loadAtStart: "fit", budgetBytes: 1000 * MB, pinned: ["p", "missing"] },
      engine,
    );
    await manager.start();
    // p (400) first; a (+300 = 700); b (+400 = 1100) would need an eviction: skipped; c (+200 = 900)
    expect(engine.loads()).toEqual(["p", "a", "c"]);
    expect(engine.unloads()).toEqual([]);
    expect(ready()).toEqual(["a", "c", "p"]);
    expect(manager.usedBytes()).toBe(900 * MB);
    expect(logs.some((l) => l.includes("pinned model 'missing' is not in"))).toBe(true);
  });

  test('"fit" respects the count too', async () => {
    const { manager, engine } = setup(["a", "b", "c"], { loadAtStart: "fit", maxLoaded: 2 });
    await manager.start();
    expect(engine.loads()).toEqual(["a", "b"]);
  });

  test('"pinned" loads only the pinned models', async () => {
    const { manager, engine, state } = setup(["a", "b", "p"], { loadAtStart: "pinned", pinned: ["p"] });
    await manager.start();
    expect(engine.loads()).toEqual(["p"]);
    expect(state("a")).toBe("available");
    expect(state("p")).toBe("ready");
  });

  test("a pinned model that does not fit is logged, and start goes on", async () => {
    const engine = new FakeEngine();
    engine.bytes.set("huge", 5000 * MB);
    const { manager, logs, state } = setup(
      ["a", "huge"],
      { loadAtStart: "fit", budgetBytes: 1000 * MB, pinned: ["huge"] },
      engine,
    );
    await manager.start();
    expect(state("huge")).toBe("available");
    expect(state("a")).toBe("ready");
    expect(logs.some((l) => l.includes("could not load 'huge'") && l.includes("does not fit"))).toBe(true);
  });

  test("without a budget of its own it takes the engine's default", async () => {
    const engine = new FakeEngine();
    engine.budget = 123 * MB;
    const { manager } = setup([], { maxLoaded: 3 }, engine);
    await manager.start();
    expect(manager.limits).toEqual({ maxLoaded: 3, budgetBytes: 123 * MB });
  });

  test("a set budget wins over the engine's default", async () => {
    const engine = new FakeEngine();
    engine.budget = 123 * MB;
    const { manager } = setup([], { budgetBytes: 7 * MB }, engine);
    await manager.start();
    expect(manager.limits.budgetBytes).toBe(7 * MB);
  });

  test("stop() before start has loaded everything: start loads no more", async () => {
    const engine = new FakeEngine();
    const gate = deferred();
    engine.loadGates.set("a", gate.promise);
    const { manager } = setup(["a", "b"], { loadAtStart: "fit" }, engine);
    const started = manager.start();
    await flush();
    expect(engine.loads()).toEqual(["a"]);
    manager.stop();
    gate.resolve();
    await started;
    expect(engine.loads()).toEqual(["a"]);
    // and a load asked for now is refused
    await expect(manager.ensure("b")).rejects.toMatchObject({ code: 503, type: "node_leaving" });
  });
});

describe("ModelManager: loads on demand and eviction", () => {
  test("maxLoaded 2, five models used in turn: never more than 2 loaded, least recently used goes", async () => {
    const { manager, engine, ready, entry } = setup(["a", "b", "c", "d", "e"], { maxLoaded: 2 });
    await manager.start();
    expect(engine.loads()).toEqual([]);
    for (const id of ["a", "b", "c", "d", "e"]) await use(manager, id);
    expect(engine.peakLoaded).toBe(2);
    expect(engine.loads()).toEqual(["a", "b", "c", "d", "e"]);
    expect(engine.unloads()).toEqual(["a", "b", "c"]);
    expect(ready()).toEqual(["d", "e"]);
    expect(entry("a").state).toBe("available");
    expect(entry("a").memoryBytes).toBe(0);
    expect(entry("a").loads).toBe(1);
    // a again: d is older than e, so d goes; a's loads count up
    await use(manager, "a");
    expect(engine.unloads()).toEqual(["a", "b", "c", "d"]);
    expect(ready()).toEqual(["a", "e"]);
    expect(entry("a").loads).toBe(2);
    expect(engine.peakLoaded).toBe(2);
  });

  test("a model used again moves to the back of the line", async () => {
    const { manager, engine } = setup(["a", "b", "c"], { maxLoaded: 2 });
    await manager.start();
    await use(manager, "a");
    await use(manager, "b");
    await use(manager, "a"); // a is now the most recently used
    await use(manager, "c");
    expect(engine.unloads()).toEqual(["b"]);
  });

  test("a loaded model is used without loading again", async () => {
    const { manager, engine, entry } = setup(["a"]);
    await manager.start();
    await use(manager, "a");
    await use(manager, "a");
    expect(engine.loads()).toEqual(["a"]);
    expect(entry("a").loads).toBe(1);
    expect(entry("a").lastUsedAt).toBe(clock - 1);
  });

  test("concurrent acquires of one unloaded model: the engine loads it once", async () => {
    const engine = new FakeEngine();
    const gate = deferred();
    engine.loadGates.set("a", gate.promise);
    const { manager, entry } = setup(["a"], {}, engine);
    await manager.start();
    const acquires = [manager.acquire("a"), manager.acquire("a"), manager.acquire("a")];
    await flush();
    expect(entry("a").state).toBe("loading");
    gate.resolve();
    await Promise.all(acquires);
    expect(engine.loads()).toEqual(["a"]);
    expect(entry("a").inUse).toBe(3);
    expect(entry("a").state).toBe("ready");
  });

  test("loads run one after another, and the second plans its room after the first", async () => {
    const engine = new FakeEngine();
    const gate = deferred();
    engine.loadGates.set("a", gate.promise);
    const { manager } = setup(["a", "b", "c"], { maxLoaded: 2 }, engine);
    await manager.start();
    const first = manager.ensure("a");
    const second = manager.ensure("b");
    await flush();
    expect(engine.loads()).toEqual(["a"]);
    gate.resolve();
    await Promise.all([first, second]);
    expect(engine.loads()).toEqual(["a", "b"]);
    // both loaded and the count full: c must evict one (a, never used, id first)
    await manager.ensure("c");
    expect(engine.unloads()).toEqual(["a"]);
  });

  test("a model in use is never evicted; a load that needs it is refused with 409 model_does_not_fit", async () => {
    const { manager, engine, state } = setup(["a", "b", "c"], { maxLoaded: 2 });
    await manager.start();
    await manager.acquire("a"); // held, not released
    clock += 10;
    await use(manager, "b");
    // c: a is older but in use, so b goes
    await use(manager, "c");
    expect(engine.unloads()).toEqual(["b"]);
    expect(state("a")).toBe("ready");
    // with maxLoaded 2 and a held, b can still come back (c goes)
    await manager.acquire("b"); // held too
    expect(engine.unloads()).toEqual(["b", "c"]);
    // now both loaded models are in use: c does not fit
    const err = await manager.acquire("c").catch((e) => e);
    expect(err).toMatchObject({ code: 409, type: "model_does_not_fit" });
    expect(err.message).toContain("2 of 2 loaded");
    expect(engine.loads()).toEqual(["a", "b", "c", "b"]);
    expect(state("c")).toBe("available");
    expect(state("a")).toBe("ready");
    expect(state("b")).toBe("ready");
  });

  test("a model the engine reports requests on is busy, even when released here", async () => {
    const { manager, engine } = setup(["a", "b"], { maxLoaded: 1 });
    await manager.start();
    await use(manager, "a");
    engine.activity.set("a", { active: 0, queued: 1 });
    await expect(manager.ensure("b")).rejects.toMatchObject({ code: 409, type: "model_does_not_fit" });
    engine.activity.delete("a");
    await manager.ensure("b");
    expect(engine.unloads()).toEqual(["a"]);
  });

  test("a pinned model is never evicted", async () => {
    const { manager, engine, state } = setup(["a", "b", "p"], { maxLoaded: 2, pinned: ["p"] });
    await manager.start();
    expect(engine.loads()).toEqual(["p"]);
    await use(manager, "a");
    await use(manager, "b"); // p (never used) is the oldest but pinned: a goes
    expect(engine.unloads()).toEqual(["a"]);
    expect(state("p")).toBe("ready");
  });

  test("budgetBytes: unloads least recently used until the new model's memory fits", async () => {
    const engine = new FakeEngine();
    for (const [id, mb] of Object.entries({ a: 400, b: 300, c: 200, d: 600, huge: 1001 }))
      engine.bytes.set(id, mb * MB);
    const { manager, ready, entry } = setup(["a", "b", "c", "d", "huge"], { budgetBytes: 1000 * MB }, engine);
    await manager.start();
    await use(manager, "a");
    await use(manager, "b");
    await use(manager, "c");
    expect(manager.usedBytes()).toBe(900 * MB);
    expect(entry("b").memoryBytes).toBe(300 * MB);
    // d (600): 900 + 600 > 1000; a (400) then b (300) go: 200 + 600 = 800
    await use(manager, "d");
    expect(engine.unloads()).toEqual(["a", "b"]);
    expect(ready()).toEqual(["c", "d"]);
    expect(manager.usedBytes()).toBe(800 * MB);
    // bigger than the whole budget: refused without unloading anything
    await expect(manager.ensure("huge")).rejects.toMatchObject({ code: 409, type: "model_does_not_fit" });
    expect(engine.unloads()).toEqual(["a", "b"]);
    expect(engine.loads()).not.toContain("huge");
  });

  test("a model unloaded is loaded again by the next acquire", async () => {
    const { manager, engine, entry } = setup(["a", "b"], { maxLoaded: 1 });
    await manager.start();
    await manager.ensure("a");
    await manager.unload("a");
    await manager.acquire("a");
    expect(entry("a").inUse).toBe(1);
    expect(engine.loads()).toEqual(["a", "a"]);
  });

  test("release without acquire does not go below zero", async () => {
    const { manager, entry } = setup(["a"]);
    await manager.start();
    manager.release("a");
    manager.release("nope");
    expect(entry("a").inUse).toBe(0);
  });
});

describe("ModelManager: idle unloads", () => {
  test("unloads ready models unused for idleMs (a load counts as a use); keeps pinned, busy and recently used", async () => {
    const { manager, engine, ready } = setup(["busy", "fresh", "never", "old", "p"], {
      idleMs: 60_000,
      pinned: ["p"],
    });
    await manager.start();
    const t0 = clock;
    await use(manager, "p");
    await use(manager, "old");
    await use(manager, "busy");
    await manager.acquire("busy"); // in use again (its lastUsedAt is old)
    await manager.ensure("never");
    clock = t0 + 30_000;
    await use(manager, "fresh");
    // just under idleMs since old's last use: nothing goes
    await manager.sweepIdle(t0 + 60_000);
    expect(engine.unloads()).toEqual([]);
    // old's last use ended at t0 + 21: at t0 + 61 s it has been idle for more than idleMs
    // never (loaded at t0, not used since) too
    await manager.sweepIdle(t0 + 61_000);
    expect(engine.unloads()).toEqual(["never", "old"]);
    expect(ready()).toEqual(["busy", "fresh", "p"]);
    // much later: fresh too; busy and p stay
    await manager.sweepIdle(t0 + 10 * 60_000);
    expect(engine.unloads()).toEqual(["never", "old", "fresh"]);
    expect(ready()).toEqual(["busy", "p"]);
  });

  test("exactly idleMs after the last use is idle enough", async () => {
    const { manager, engine } = setup(["a"], { idleMs: 1000 });
    await manager.start();
    await manager.acquire("a");
    manager.release("a");
    const last = clock;
    await manager.sweepIdle(last + 999);
    expect(engine.unloads()).toEqual([]);
    await manager.sweepIdle(last + 1000);
    expect(engine.unloads()).toEqual(["a"]);
  });

  test("with idleMs null nothing is swept", async () => {
    const { manager, engine } = setup(["a"], { idleMs: null });
    await manager.start();
    await use(manager, "a");
    await manager.sweepIdle(clock + 1e12);
    expect(engine.unloads()).toEqual([]);
  });

  test("an unload the engine refuses leaves the model ready, and the sweep goes on", async () => {
    const engine = new FakeEngine();
    const { manager, ready } = setup(["a", "b"], { idleMs: 1000 }, engine);
    await manager.start();
    await use(manager, "a");
    await use(manager, "b");
    engine.unloadFailures.set("a", ["busy in the engine"]);
    await manager.sweepIdle(clock + 5000);
    expect(ready()).toEqual(["a"]);
  });
});

describe("ModelManager: unload", () => {
  test("unloads a loaded idle model", async () => {
    const { manager, engine, entry } = setup(["a"]);
    await manager.start();
    await use(manager, "a");
    await manager.unload("a");
    expect(engine.unloads()).toEqual(["a"]);
    expect(entry("a")).toMatchObject({ state: "available", memoryBytes: 0, lastUsedAt: null });
  });

  test("409 pinned, 409 busy, 409 not loaded, 404 unknown", async () => {
    const { manager, engine } = setup(["a", "b", "p"], { pinned: ["p"] });
    await manager.start();
    await expect(manager.unload("p")).rejects.toMatchObject({ code: 409, type: "model_pinned" });
    await manager.acquire("a");
    await expect(manager.unload("a")).rejects.toMatchObject({ code: 409, type: "model_busy" });
    await expect(manager.unload("b")).rejects.toMatchObject({ code: 409, type: "model_not_loaded" });
    await expect(manager.unload("nope")).rejects.toMatchObject({ code: 404, type: "model_not_found" });
    // busy by the engine's count as well
    manager.release("a");
    engine.activity.set("a", { active: 1, queued: 0 });
    await expect(manager.unload("a")).rejects.toMatchObject({ code: 409, type: "model_busy" });
    expect(engine.unloads()).toEqual([]);
  });

  test("an unload the engine refuses: the model stays ready and the error comes back", async () => {
    const engine = new FakeEngine();
    const { manager, state } = setup(["a"], {}, engine);
    await manager.start();
    await manager.ensure("a");
    engine.unloadFailures.set("a", ["engine says no"]);
    await expect(manager.unload("a")).rejects.toThrow("engine says no");
    expect(state("a")).toBe("ready");
  });
});

describe("ModelManager: failures", () => {
  test("an invalid file: failed with the reason; ensure is 422 invalid_model_file, retry or not", async () => {
    const engine = new FakeEngine();
    engine.bad.add("broken");
    const { manager, entry } = setup(["broken", "good"], { loadAtStart: "fit" }, engine);
    await manager.start();
    expect(entry("broken")).toMatchObject({
      state: "failed",
      estimatedBytes: null,
      error: expect.stringContaining("not a valid GGUF model file: bad magic"),
    });
    expect(entry("good").state).toBe("ready");
    for (const retry of [false, true]) {
      const err = await manager.ensure("broken", retry).catch((e) => e);
      expect(err).toMatchObject({ code: 422, type: "invalid_model_file" });
      expect(err.message).toContain("bad magic");
    }
    await expect(manager.acquire("broken")).rejects.toMatchObject({ type: "invalid_model_file" });
    expect(engine.loads()).toEqual(["good"]);
  });

  test("a load the engine fails: failed, error kept; ensure again is 422 without the engine; retryFailed tries again", async () => {
    const engine = new FakeEngine();
    engine.loadFailures.set("a", ["out of memory"]);
    const { manager, entry, logs } = setup(["a"], {}, engine);
    await manager.start();
    const first = await manager.ensure("a").catch((e) => e);
    expect(first).toMatchObject({ code: 422, type: "model_load_failed" });
    expect(first.message).toContain("out of memory");
    expect(entry("a")).toMatchObject({ state: "failed", error: "out of memory", memoryBytes: 0 });
    expect(manager.usedBytes()).toBe(0);
    expect(logs.some((l) => l.includes("could not load 'a': out of memory"))).toBe(true);

    const again = await manager.ensure("a").catch((e) => e);
    expect(again).toMatchObject({ code: 422, type: "model_load_failed" });
    expect(again.message).toContain("out of memory");
    await expect(manager.acquire("a")).rejects.toMatchObject({ type: "model_load_failed" });
    expect(engine.loads()).toEqual(["a"]);

    await manager.ensure("a", true);
    expect(engine.loads()).toEqual(["a", "a"]);
    expect(entry("a")).toMatchObject({ state: "ready", error: null, loads: 1 });
  });

  test("a failed load does not block the loads queued behind it", async () => {
    const engine = new FakeEngine();
    engine.loadFailures.set("a", ["boom"]);
    const { manager, state } = setup(["a", "b"], {}, engine);
    await manager.start();
    const results = await Promise.allSettled([manager.ensure("a"), manager.ensure("b")]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled"]);
    expect(state("b")).toBe("ready");
  });

  test("ensure of an unknown model: 404 model_not_found", async () => {
    const { manager } = setup([]);
    await manager.start();
    await expect(manager.ensure("nope")).rejects.toMatchObject({ code: 404, type: "model_not_found" });
    await expect(manager.acquire("nope")).rejects.toMatchObject({ code: 404 });
  });
});

describe("ModelManager: scan", () => {
  test("picks up a new file and forgets a deleted one that is not loaded", async () => {
    const { manager, engine, state } = setup(["a", "b"]);
    await manager.start();
    expect(manager.has("c")).toBe(false);
    writeFile("c");
    fs.rmSync(path.join(dir, "b.gguf"));
    await manager.scan();
    expect(state("c")).toBe("available");
    expect(manager.has("b")).toBe(false);
    expect(manager.catalog().map((c) => c.id)).toEqual(["a", "c"]);
    await manager.ensure("c");
    expect(engine.loads()).toEqual(["c"]);
  });

  test("a deleted file whose model is loaded stays until unloaded", async () => {
    const { manager, state } = setup(["a"]);
    await manager.start();
    await manager.ensure("a");
    fs.rmSync(path.join(dir, "a.gguf"));
    await manager.scan();
    expect(state("a")).toBe("ready");
    await manager.unload("a");
    await manager.scan();
    expect(manager.has("a")).toBe(false);
  });

  test("an unchanged file is not read again; a replaced failed one is, and may be good now", async () => {
    const engine = new FakeEngine();
    engine.bad.add("a");
    const { manager, state } = setup(["a"], {}, engine);
    await manager.start();
    expect(state("a")).toBe("failed");
    await manager.scan();
    expect(engine.inspected).toEqual(["a"]);
    engine.bad.delete("a");
    const file = path.join(dir, "a.gguf");
    fs.writeFileSync(file, "GGUF v2");
    const later = new Date(Date.now() + 10_000);
    fs.utimesSync(file, later, later);
    await manager.scan();
    expect(engine.inspected).toEqual(["a", "a"]);
    expect(state("a")).toBe("available");
    await manager.ensure("a");
    expect(state("a")).toBe("ready");
  });

  test("models in sub-folders are found by their relative path", async () => {
    const { manager } = setup(["org/model-q4"]);
    await manager.start();
    expect(manager.has("org/model-q4")).toBe(true);
  });

  test("add() scans and loads the new file", async () => {
    const { manager, state } = setup([]);
    await manager.start();
    writeFile("new");
    await manager.add("new");
    expect(state("new")).toBe("ready");
  });

  test("remove() unloads and forgets; 409 while in use; 404 unknown", async () => {
    const { manager, engine } = setup(["a", "b"]);
    await manager.start();
    await manager.acquire("a");
    await expect(manager.remove("a")).rejects.toMatchObject({ code: 409, type: "model_busy" });
    manager.release("a");
    await manager.remove("a");
    expect(engine.unloads()).toEqual(["a"]);
    expect(manager.has("a")).toBe(false);
    await manager.remove("b");
    expect(engine.unloads()).toEqual(["a"]);
    expect(manager.has("b")).toBe(false);
    await expect(manager.remove("a")).rejects.toMatchObject({ code: 404 });
  });
});

describe("ModelManager: catalog and onChange", () => {
  test("catalog() shows each file's facts and state, without internals", async () => {
    const engine = new FakeEngine();
    engine.bytes.set("a", 250 * MB);
    const { manager } = setup(["a", "b"], { pinned: ["b"] }, engine);
    fs.writeFileSync(path.join(dir, "a.gguf"), "x".repeat(1234));
    await manager.start();
    clock = 5_000_000;
    await manager.acquire("a");
    const a = manager.catalog().find((c) => c.id === "a")!;
    expect(a).toEqual({
      id: "a",
      sizeBytes: 1234,
      quantization: "Q4_K_M",
      estimatedBytes: 250 * MB,
      state: "ready",
      error: null,
      pinned: false,
      inUse: 1,
      memoryBytes: 250 * MB,
      lastUsedAt: expect.any(Number),
      loadMs: expect.any(Number),
      loads: 1,
    });
    manager.release("a");
    expect(manager.catalog().find((c) => c.id === "a")).toMatchObject({ inUse: 0, lastUsedAt: 5_000_000 });
    expect(manager.catalog().find((c) => c.id === "b")).toMatchObject({ pinned: true, state: "ready", inUse: 0 });
    // the view is a copy
    manager.catalog()[0].state = "failed";
    expect(manager.catalog()[0].state).not.toBe("failed");
  });

  test("onChange is called on each state change, with the new state already visible", async () => {
    const engine = new FakeEngine();
    const { manager, onChange, state } = setup(["a", "b"], { maxLoaded: 1 }, engine);
    const seen: string[] = [];
    onChange.mockImplementation(() => seen.push(`a:${state("a")} b:${state("b")}`));
    await manager.start();
    seen.length = 0;
    await manager.ensure("a");
    expect(seen).toEqual(["a:loading b:available", "a:ready b:available"]);
    seen.length = 0;
    await manager.ensure("b"); // a must go first
    expect(seen).toEqual([
      "a:unloading b:available",
      "a:available b:available",
      "a:available b:loading",
      "a:available b:ready",
    ]);
    seen.length = 0;
    engine.loadFailures.set("a", ["nope"]);
    await manager.unload("b");
    await manager.ensure("a").catch(() => undefined);
    expect(seen).toEqual([
      "a:available b:unloading",
      "a:available b:available",
      "a:loading b:available",
      "a:failed b:available",
    ]);
    seen.length = 0;
    await manager.scan(); // nothing changed on disk
    expect(seen).toEqual([]);
    writeFile("c");
    await manager.scan();
    expect(onChange).toHaveBeenCalled();
    expect(seen.length).toBe(1);
  });
});

describe("ModelManager: races", () => {
  test("a model requested while an eviction for another load is under way is not unloaded under it", async () => {
    const engine = new FakeEngine();
    for (const [id, mb] of Object.entries({ a: 100, b: 100, c: 300 })) engine.bytes.set(id, mb * MB);
    const { manager, state, entry } = setup(["a", "b", "c"], { budgetBytes: 300 * MB }, engine);
    await manager.start();
    await use(manager, "a");
    await use(manager, "b");
    // c needs all 300: a then b must go. a's unload takes a while...
    const slowUnload = deferred();
    engine.unloadGates.set("a", slowUnload.promise);
    const loadC = manager.ensure("c").catch((e) => e);
    await flush();
    expect(state("a")).toBe("unloading");
    // ...and meanwhile a request for b arrives: b is ready, so it takes it
    await expect(manager.acquire("b")).resolves.toBeUndefined();
    expect(entry("b").inUse).toBe(1);
    slowUnload.resolve();
    const err = await loadC;
    // b serves a request: it must not be unloaded; c does not fit now
    expect(state("b")).toBe("ready");
    expect(engine.loaded.has("b")).toBe(true);
    expect(engine.unloads()).toEqual(["a"]);
    expect(err).toMatchObject({ code: 409, type: "model_does_not_fit" });
  });

  test("a model requested while it is being unloaded is loaded again after the unload, not during it", async () => {
    const engine = new FakeEngine();
    const { manager, state, entry } = setup(["a"], { idleMs: 1000 }, engine);
    await manager.start();
    await use(manager, "a");
    const slowUnload = deferred();
    engine.unloadGates.set("a", slowUnload.promise);
    const sweep = manager.sweepIdle(clock + 5000);
    await flush();
    expect(state("a")).toBe("unloading");
    const acquired = manager.acquire("a").then(
      () => "acquired",
      (e: Error) => e.message,
    );
    await flush();
    // no load of a while its unload runs
    expect(engine.calls).toEqual(["load a", "unload a"]);
    slowUnload.resolve();
    await sweep;
    expect(await acquired).toBe("acquired");
    expect(engine.calls).toEqual(["load a", "unload a", "load a"]);
    expect(entry("a")).toMatchObject({ state: "ready", inUse: 1, memoryBytes: 100 * MB });
    expect(manager.usedBytes()).toBe(100 * MB);
  });
});

describe("ModelManager: scans at once", () => {
  test("a download's scan and the heartbeat's at the same moment read a new file once; a load on it is the one the catalog shows", async () => {
    const { manager, engine } = setup([]);
    await manager.start();
    writeFile("fresh");
    // the heartbeat's scan and a download's add() together
    await Promise.all([manager.scan(), manager.add("fresh")]);
    expect(engine.inspected.filter((f) => f.includes("fresh"))).toHaveLength(1);
    expect(manager.catalog().find((c) => c.id === "fresh")?.state).toBe("ready");
    // removing it unloads what the engine holds
    await manager.remove("fresh");
    expect(engine.models().map((m) => m.id)).not.toContain("fresh");
  });
});
