/**
 * The balancer loads a model no node has loaded (lib/routing/balancer.ts):
 * it asks the node placement chooses, once, while the requests for the model
 * wait in the queue; they go when a heartbeat shows it loaded, try another
 * node when the load fails, and hear why when none is left.
 */
import { NodeTable } from "../../../../lib/cluster/node-table";
import type { CatalogEntry, Heartbeat } from "../../../../lib/cluster/types";
import { toOpenAIError } from "../../../../lib/openai/errors";
import { Balancer, type BalancerOptions, type Selection } from "../../../../lib/routing/balancer";
import { heartbeat } from "../../../helpers/candidates";

const GB = 2 ** 30;

interface Deferred {
  promise: Promise<unknown>;
  resolve: () => void;
  reject: (e: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<unknown>((res, rej) => {
    resolve = () => res(undefined);
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise callbacks run (fake timers do not hold promises). */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function entry(id: string, state: CatalogEntry["state"], over: Partial<CatalogEntry> = {}): CatalogEntry {
  const loaded = state === "ready" || state === "loading";
  return {
    id,
    sizeBytes: 100,
    quantization: "Q4_K_M",
    estimatedBytes: GB,
    state,
    error: null,
    pinned: false,
    inUse: 0,
    memoryBytes: loaded ? GB : 0,
    lastUsedAt: null,
    loadMs: null,
    loads: 0,
    ...over,
  };
}

/** A node's heartbeat: `catalog` by model id → state; the ready ones are in `models`. */
function nodeHb(
  nodeID: string,
  catalog: Record<string, CatalogEntry["state"] | CatalogEntry>,
  over: Partial<Heartbeat> = {},
): Heartbeat {
  const entries = Object.entries(catalog).map(([id, s]) => (typeof s === "string" ? entry(id, s) : s));
  return heartbeat(
    nodeID,
    entries.filter((c) => c.state === "ready").map((c) => c.id),
    {
      catalog: entries,
      modelMemory: {
        maxLoaded: null,
        budgetBytes: 16 * GB,
        usedBytes: entries.reduce((n, c) => n + c.memoryBytes, 0),
      },
      ...over,
    },
  );
}

const OPTS: BalancerOptions = {
  balancerMode: "least_busy",
  failureThreshold: 3,
  cooldownSecs: 30,
  queueLimit: 100,
  queueTimeoutSecs: 30,
};

interface LoadCall {
  nodeID: string;
  model: string;
  d: Deferred;
}

function setup(withLoader = true) {
  const table = new NodeTable();
  const warnings: string[] = [];
  const balancer = new Balancer(
    OPTS,
    table,
    () => undefined,
    (m) => warnings.push(m),
  );
  const calls: LoadCall[] = [];
  if (withLoader) {
    balancer.loader = (nodeID, model) => {
      const d = deferred();
      calls.push({ nodeID, model, d });
      return d.promise;
    };
  }
  /** A heartbeat arrives, and the router tells the balancer (as the registry does). */
  const beat = (hb: Heartbeat) => {
    table.upsert(hb, Date.now());
    balancer.nodeChanged(hb.nodeID);
  };
  return { table, balancer, calls, warnings, beat };
}

/** A select whose outcome is kept (so a rejection is never unhandled), with a flag for "settled yet". */
function track(p: Promise<Selection>) {
  const t = {
    settled: false,
    result: p.then(
      (s) => ({ ok: true as const, s }),
      (e: unknown) => ({ ok: false as const, e }),
    ),
  };
  void t.result.then(() => (t.settled = true));
  return t;
}

beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
afterEach(() => jest.useRealTimers());

describe("Balancer: load on demand", () => {
  test("loads on the chosen node once; concurrent requests wait for that load and go when it is loaded", async () => {
    const { balancer, calls, beat, warnings } = setup();
    beat(nodeHb("cpu", { m: "available" }));
    beat(nodeHb("gpu", { m: "available" }, { gpuBackend: "cuda" }));

    const first = track(balancer.select({ model: "m" }));
    expect(calls.map((c) => [c.nodeID, c.model])).toEqual([["gpu", "m"]]);
    expect(warnings).toContain("Loading m on gpu for the requests waiting for it");
    expect(balancer.stats()).toMatchObject({ queued: 1, loading: { m: "gpu" } });

    jest.advanceTimersByTime(500);
    const second = track(balancer.select({ model: "m" }));
    await flush();
    expect(calls).toHaveLength(1);
    expect(balancer.stats().queued).toBe(2);

    // the node says it is loading (its heartbeat on the state change): nothing new is asked
    jest.advanceTimersByTime(500);
    beat(nodeHb("gpu", { m: "loading" }, { gpuBackend: "cuda" }));
    await flush();
    expect(calls).toHaveLength(1);
    expect(first.settled || second.settled).toBe(false);

    // loaded: the heartbeat shows it, and both go to that node
    jest.advanceTimersByTime(1000);
    beat(nodeHb("gpu", { m: "ready" }, { gpuBackend: "cuda" }));
    calls[0].d.resolve();
    const [a, b] = await Promise.all([first.result, second.result]);
    expect(a).toMatchObject({ ok: true, s: { nodeID: "gpu", machineName: "host-gpu", loadMs: 2000 } });
    expect(b).toMatchObject({ ok: true, s: { nodeID: "gpu", loadMs: 1500 } }); // from its own arrival
    expect(calls).toHaveLength(1);
    await flush();
    expect(balancer.stats()).toMatchObject({ queued: 0, loading: {}, inflight: { gpu: 2 } });

    // now loaded: a new request goes at once, no load, no loadMs
    const third = await balancer.select({ model: "m" });
    expect(third.nodeID).toBe("gpu");
    expect(third.loadMs).toBeUndefined();
    expect(calls).toHaveLength(1);
  });

  test("a model unloaded again right after a load is loaded again at once for the next request", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("n1", { m: "available" }));
    const first = track(balancer.select({ model: "m" }));
    // the load's answer comes before the heartbeat saying so
    calls[0].d.resolve();
    await flush();
    expect(first.settled).toBe(false);
    beat(nodeHb("n1", { m: "ready" }));
    expect(await first.result).toMatchObject({ ok: true, s: { nodeID: "n1" } });
    balancer.finished({ nodeID: "n1", outcome: "ok" });
    // an operator unloads it a moment later: the node's heartbeat after the load says so
    jest.advanceTimersByTime(200);
    beat(nodeHb("n1", { m: "available" }));
    const second = track(balancer.select({ model: "m" }));
    await flush();
    expect(calls.map((c) => c.nodeID)).toEqual(["n1", "n1"]);
    calls[1].d.resolve();
    jest.advanceTimersByTime(200);
    beat(nodeHb("n1", { m: "ready" }));
    expect(await second.result).toMatchObject({ ok: true, s: { nodeID: "n1", loadMs: 200 } });
  });

  test("a model too big for every node that has it: 503 model_does_not_fit naming them, no load asked", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("n1", { m: entry("m", "available", { estimatedBytes: 64 * GB }) }));
    const out = await track(balancer.select({ model: "m" })).result;
    expect(out.ok).toBe(false);
    const err = toOpenAIError((out as { e: unknown }).e);
    expect(err.status).toBe(503);
    expect(err.body.error.code).toBe("model_does_not_fit");
    expect(err.body.error.message).toContain("n1");
    expect(calls).toHaveLength(0);
  });

  test("a request queued behind one waiting for the load reports its own wait as loadMs", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("n1", { m: "available" }));
    const first = track(balancer.select({ model: "m" }));
    jest.advanceTimersByTime(400);
    const second = track(balancer.select({ model: "m" }));
    jest.advanceTimersByTime(600);
    // no heartbeat in between: the next one shows it loaded
    beat(nodeHb("n1", { m: "ready" }));
    expect(await first.result).toMatchObject({ ok: true, s: { nodeID: "n1", loadMs: 1000 } });
    expect(await second.result).toMatchObject({ ok: true, s: { nodeID: "n1", loadMs: 600 } });
    expect(calls).toHaveLength(1);
  });

  test("a request queued behind one waiting for a full node (no load) has no loadMs", async () => {
    const { balancer, calls, beat } = setup();
    const full = nodeHb("n1", { m: "ready" });
    full.models[0].active = 4;
    beat(full);
    const first = track(balancer.select({ model: "m" }));
    const second = track(balancer.select({ model: "m" }));
    await flush();
    expect(first.settled || second.settled).toBe(false);
    beat(nodeHb("n1", { m: "ready" }));
    const [a, b] = await Promise.all([first.result, second.result]);
    expect(a).toMatchObject({ ok: true, s: { nodeID: "n1" } });
    expect(b).toMatchObject({ ok: true, s: { nodeID: "n1" } });
    expect((a as { s: Selection }).s.loadMs).toBeUndefined();
    expect((b as { s: Selection }).s.loadMs).toBeUndefined();
    expect(calls).toHaveLength(0);
  });

  test("the loader resolving before the heartbeat: the requests wait for the heartbeat", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("n1", { m: "loading" }));
    // another router's load, seen in the heartbeat: this one waits for it without asking
    const r = track(balancer.select({ model: "m" }));
    await flush();
    expect(calls).toHaveLength(0);
    expect(r.settled).toBe(false);
    jest.advanceTimersByTime(3000);
    beat(nodeHb("n1", { m: "ready" }));
    expect(await r.result).toMatchObject({ ok: true, s: { nodeID: "n1", loadMs: 3000 } });
  });

  test("a loaded model on any node is used; nothing is loaded", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("a", { m: "available" }, { gpuBackend: "cuda" }));
    beat(nodeHb("b", { m: "ready" }));
    const s = await balancer.select({ model: "m" });
    expect(s.nodeID).toBe("b");
    expect(s.loadMs).toBeUndefined();
    expect(calls).toHaveLength(0);
  });

  test("an excluded node is not asked to load", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("gpu", { m: "available" }, { gpuBackend: "cuda" }));
    beat(nodeHb("cpu", { m: "available" }));
    const r = track(balancer.select({ model: "m", exclude: ["gpu"] }));
    await flush();
    expect(calls.map((c) => c.nodeID)).toEqual(["cpu"]);
    beat(nodeHb("cpu", { m: "ready" }));
    expect(await r.result).toMatchObject({ ok: true, s: { nodeID: "cpu" } });
  });

  test("a failed load: the waiting requests try another node; with none left, 503 model_load_failed with the reasons", async () => {
    const { balancer, calls, beat, warnings } = setup();
    beat(nodeHb("gpu", { m: "available" }, { gpuBackend: "cuda" }));
    beat(nodeHb("cpu", { m: "available" }));
    const first = track(balancer.select({ model: "m" }));
    const second = track(balancer.select({ model: "m" }));
    expect(calls.map((c) => c.nodeID)).toEqual(["gpu"]);

    calls[0].d.reject(new Error("out of memory"));
    await flush();
    // the next node is asked, once, and both still wait
    expect(calls.map((c) => c.nodeID)).toEqual(["gpu", "cpu"]);
    expect(first.settled || second.settled).toBe(false);
    expect(warnings).toContain("Loading m on gpu failed: out of memory");

    calls[1].d.reject(new Error("not a valid GGUF"));
    const [a, b] = await Promise.all([first.result, second.result]);
    for (const r of [a, b]) {
      expect(r.ok).toBe(false);
      const e = toOpenAIError((r as { e: unknown }).e);
      expect(e).toMatchObject({ status: 503, retryAfter: 5, body: { error: { code: "model_load_failed" } } });
      expect(e.body.error.message).toContain("gpu: out of memory");
      expect(e.body.error.message).toContain("cpu: not a valid GGUF");
      expect(e.body.error.message).toContain("'m'");
    }
    expect(calls).toHaveLength(2);
    expect(balancer.stats()).toMatchObject({ queued: 0, loading: {} });
  });

  test("a node where the load failed is not asked again for a minute; then it is", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("n1", { m: "available" }));
    const r = track(balancer.select({ model: "m" }));
    calls[0].d.reject(new Error("boom"));
    const out = await r.result;
    expect(out.ok).toBe(false);
    expect(toOpenAIError((out as { e: unknown }).e).body.error.code).toBe("model_load_failed");

    // at once: 503 without asking again
    jest.advanceTimersByTime(59_000);
    const again = await balancer.select({ model: "m" }).catch((e: unknown) => e);
    expect(toOpenAIError(again)).toMatchObject({ status: 503, body: { error: { code: "model_load_failed" } } });
    expect(toOpenAIError(again).body.error.message).toContain("n1: boom");
    expect(calls).toHaveLength(1);

    // a minute after the failure it is tried again
    jest.advanceTimersByTime(1_000);
    const later = track(balancer.select({ model: "m" }));
    await flush();
    expect(calls).toHaveLength(2);
    beat(nodeHb("n1", { m: "ready" }));
    expect(await later.result).toMatchObject({ ok: true, s: { nodeID: "n1" } });
  });

  test("a load failure reported in a node's catalog is named in the 503", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("n1", { m: entry("m", "failed", { error: "bad tensor" }) }));
    const e = await balancer.select({ model: "m" }).catch((err: unknown) => err);
    expect(toOpenAIError(e)).toMatchObject({ status: 503, body: { error: { code: "model_load_failed" } } });
    expect(toOpenAIError(e).body.error.message).toContain("n1: bad tensor");
    expect(calls).toHaveLength(0);
  });

  test("a per-request waitMs shorter than the queue's timeout: 503 queue_timeout after it", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("n1", { m: "available" }));
    const short = track(balancer.select({ model: "m", waitMs: 2_000 }));
    const long = track(balancer.select({ model: "m" }));
    expect(calls).toHaveLength(1);
    jest.advanceTimersByTime(1_999);
    await flush();
    expect(short.settled).toBe(false);
    jest.advanceTimersByTime(1);
    const r = await short.result;
    expect(r.ok).toBe(false);
    expect(toOpenAIError((r as { e: unknown }).e)).toMatchObject({
      status: 503,
      body: { error: { code: "queue_timeout" } },
    });
    // the other waits on, for the queue's own 30 s
    expect(long.settled).toBe(false);
    expect(balancer.stats().queued).toBe(1);
    jest.advanceTimersByTime(27_999);
    await flush();
    expect(long.settled).toBe(false);
    jest.advanceTimersByTime(1);
    const l = await long.result;
    expect(toOpenAIError((l as { e: unknown }).e).body.error.code).toBe("queue_timeout");
  });

  test("a timeout after a load failed says why it failed rather than that it timed out", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("a", { m: "available" }, { gpuBackend: "cuda" }));
    beat(nodeHb("b", { m: "available" }));
    const r = track(balancer.select({ model: "m", waitMs: 5_000 }));
    calls[0].d.reject(new Error("gpu fell over"));
    await flush();
    expect(calls.map((c) => c.nodeID)).toEqual(["a", "b"]); // b's load never ends
    jest.advanceTimersByTime(5_000);
    const out = await r.result;
    const e = toOpenAIError((out as { e: unknown }).e);
    expect(e.body.error.code).toBe("model_load_failed");
    expect(e.body.error.message).toContain("a: gpu fell over");
  });

  test("without a loader: the old behaviour, 503 for a model only on disk, 404 for an unknown one", async () => {
    const { balancer, beat } = setup(false);
    beat(nodeHb("n1", { m: "available", other: "ready" }));
    const e = await balancer.select({ model: "m" }).catch((err: unknown) => err);
    expect(toOpenAIError(e)).toMatchObject({ status: 503, body: { error: { code: "no_available_node" } } });
    const nf = await balancer.select({ model: "nope" }).catch((err: unknown) => err);
    expect(toOpenAIError(nf)).toMatchObject({ status: 404, body: { error: { code: "model_not_found" } } });
    expect(await balancer.select({ model: "other" })).toMatchObject({ nodeID: "n1" });
    expect(balancer.stats()).toMatchObject({ queued: 0, loading: {} });
  });

  test("with a loader, an unknown model is still 404 at once", async () => {
    const { balancer, calls, beat } = setup();
    beat(nodeHb("n1", { m: "available" }));
    const nf = await balancer.select({ model: "nope" }).catch((err: unknown) => err);
    expect(toOpenAIError(nf)).toMatchObject({ status: 404, body: { error: { code: "model_not_found" } } });
    expect(calls).toHaveLength(0);
  });
});
