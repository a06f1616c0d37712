/**
 * Where a model no node has loaded is loaded (lib/routing/placement.ts): the
 * node that can take it soonest, by evictions, GPU, free memory, then load.
 */
import type { CatalogEntry, NodeRecord } from "../../../../lib/cluster/types";
import { placeLoad } from "../../../../lib/routing/placement";
import { heartbeat } from "../../../helpers/candidates";

const GB = 2 ** 30;

/** A catalog entry: on disk (`available`) unless `over` says otherwise. */
function entry(id: string, over: Partial<CatalogEntry> = {}): CatalogEntry {
  const state = over.state ?? "available";
  const est = over.estimatedBytes ?? GB;
  const loaded = state === "ready" || state === "loading" || state === "unloading";
  return {
    id,
    sizeBytes: 100,
    quantization: "Q4_K_M",
    estimatedBytes: est,
    state,
    error: null,
    pinned: false,
    inUse: 0,
    memoryBytes: loaded ? est : 0,
    lastUsedAt: loaded ? 1 : null,
    loadMs: null,
    loads: 0,
    ...over,
  };
}

interface NodeOpts {
  catalog: CatalogEntry[];
  maxLoaded?: number | null;
  budgetBytes?: number | null;
  gpu?: string | false;
  /** The loaded models' load in `models` (by id): active, queued. */
  activity?: Record<string, [number, number]>;
}

/** An online node's record with `catalog`; `models` holds its ready ones, `modelMemory` what they hold. */
function node(id: string, o: NodeOpts): NodeRecord {
  const ready = o.catalog.filter((c) => c.state === "ready");
  const hb = heartbeat(
    id,
    ready.map((c) => c.id),
    {
      gpuBackend: o.gpu ?? false,
      catalog: o.catalog,
      modelMemory: {
        maxLoaded: o.maxLoaded ?? null,
        budgetBytes: o.budgetBytes ?? null,
        usedBytes: o.catalog.reduce((n, c) => n + c.memoryBytes, 0),
      },
    },
  );
  for (const m of hb.models) {
    const [active, queued] = o.activity?.[m.id] ?? [0, 0];
    m.active = active;
    m.queued = queued;
  }
  const { sentAt: _s, ...rest } = hb;
  return { ...rest, id, status: "online", registeredAt: "", lastSeen: "" };
}

const idle = () => 0;

describe("placeLoad", () => {
  test("a node where it fits without eviction beats one that must unload a model", () => {
    const full = node("a-full", {
      catalog: [entry("m"), entry("other", { state: "ready" })],
      maxLoaded: 1,
      gpu: "cuda", // a GPU and more memory do not outweigh an eviction
      budgetBytes: 100 * GB,
    });
    const roomy = node("b-roomy", { catalog: [entry("m")], maxLoaded: 1, budgetBytes: 2 * GB });
    expect(placeLoad([full, roomy], "m", idle)).toEqual({ nodeID: "b-roomy", evictions: [] });
    expect(placeLoad([roomy, full], "m", idle)).toEqual({ nodeID: "b-roomy", evictions: [] });
  });

  test("fewer evictions beat more, and the plan names them in LRU order", () => {
    const two = node("a", {
      catalog: [
        entry("m", { estimatedBytes: 2 * GB }),
        entry("x", { state: "ready", lastUsedAt: 5 }),
        entry("y", { state: "ready", lastUsedAt: 2 }),
      ],
      budgetBytes: 2 * GB,
    });
    const one = node("b", {
      catalog: [entry("m"), entry("z", { state: "ready" }), entry("w", { state: "ready" })],
      maxLoaded: 2,
    });
    expect(placeLoad([two, one], "m", idle)).toEqual({ nodeID: "b", evictions: ["w"] });
    // alone, the node needing two gives both, oldest first
    expect(placeLoad([two], "m", idle)).toEqual({ nodeID: "a", evictions: ["y", "x"] });
  });

  test("with equal evictions a GPU node beats a CPU node, even with less memory free", () => {
    const cpu = node("a-cpu", { catalog: [entry("m")], budgetBytes: 64 * GB });
    const gpu = node("b-gpu", { catalog: [entry("m")], budgetBytes: 8 * GB, gpu: "cuda" });
    expect(placeLoad([cpu, gpu], "m", idle)?.nodeID).toBe("b-gpu");
  });

  test("then the node with more memory left wins", () => {
    const tight = node("a", {
      catalog: [entry("m"), entry("o", { state: "ready", estimatedBytes: 6 * GB })],
      budgetBytes: 8 * GB,
    });
    const roomy = node("b", {
      catalog: [entry("m"), entry("o", { state: "ready", estimatedBytes: 1 * GB })],
      budgetBytes: 8 * GB,
    });
    expect(placeLoad([tight, roomy], "m", idle)?.nodeID).toBe("b");
    // a node with no budget has all the room there is
    const unbounded = node("c", { catalog: [entry("m")] });
    expect(placeLoad([tight, roomy, unbounded], "m", idle)?.nodeID).toBe("c");
  });

  test("then the less busy node wins", () => {
    const a = node("a", { catalog: [entry("m")], budgetBytes: 8 * GB });
    const b = node("b", { catalog: [entry("m")], budgetBytes: 8 * GB });
    const load: Record<string, number> = { a: 3, b: 1 };
    expect(placeLoad([a, b], "m", (n) => load[n.id])?.nodeID).toBe("b");
    load.b = 4;
    expect(placeLoad([a, b], "m", (n) => load[n.id])?.nodeID).toBe("a");
  });

  test("all else equal, the first node listed is kept", () => {
    const a = node("a", { catalog: [entry("m")] });
    const b = node("b", { catalog: [entry("m")] });
    expect(placeLoad([a, b], "m", idle)?.nodeID).toBe("a");
    expect(placeLoad([b, a], "m", idle)?.nodeID).toBe("b");
  });

  test("a model bigger than a node's budget is never placed there, however good the node", () => {
    const small = node("a-small", {
      catalog: [entry("m", { estimatedBytes: 10 * GB })],
      budgetBytes: 8 * GB,
      gpu: "cuda",
    });
    const big = node("b-big", {
      catalog: [entry("m", { estimatedBytes: 10 * GB }), entry("o", { state: "ready", estimatedBytes: 10 * GB })],
      budgetBytes: 16 * GB,
    });
    expect(placeLoad([small, big], "m", idle)).toEqual({ nodeID: "b-big", evictions: ["o"] });
    expect(placeLoad([small], "m", idle)).toBeNull();
  });

  test("a node whose memory is held by busy or pinned models is not chosen", () => {
    const pinned = node("a-pinned", {
      catalog: [
        entry("m", { estimatedBytes: 4 * GB }),
        entry("p", { state: "ready", pinned: true, estimatedBytes: 6 * GB }),
      ],
      budgetBytes: 8 * GB,
      gpu: "cuda",
    });
    const inUse = node("b-inuse", {
      catalog: [
        entry("m", { estimatedBytes: 4 * GB }),
        entry("u", { state: "ready", inUse: 1, estimatedBytes: 6 * GB }),
      ],
      budgetBytes: 8 * GB,
      gpu: "cuda",
    });
    // busy by the heartbeat's own counts (a request queued on it), inUse 0
    const queued = node("c-queued", {
      catalog: [entry("m", { estimatedBytes: 4 * GB }), entry("q", { state: "ready", estimatedBytes: 6 * GB })],
      budgetBytes: 8 * GB,
      gpu: "cuda",
      activity: { q: [0, 1] },
    });
    const active = node("d-active", {
      catalog: [entry("m", { estimatedBytes: 4 * GB }), entry("r", { state: "ready", estimatedBytes: 6 * GB })],
      budgetBytes: 8 * GB,
      activity: { r: [1, 0] },
    });
    // a model still loading counts but cannot be unloaded
    const loading = node("e-loading", {
      catalog: [entry("m", { estimatedBytes: 4 * GB }), entry("l", { state: "loading", estimatedBytes: 6 * GB })],
      budgetBytes: 8 * GB,
    });
    expect(placeLoad([pinned, inUse, queued, active, loading], "m", idle)).toBeNull();
    // an idle node that must evict is still a choice
    const idleNode = node("f-idle", {
      catalog: [entry("m", { estimatedBytes: 4 * GB }), entry("i", { state: "ready", estimatedBytes: 6 * GB })],
      budgetBytes: 8 * GB,
    });
    expect(placeLoad([pinned, inUse, queued, active, loading, idleNode], "m", idle)).toEqual({
      nodeID: "f-idle",
      evictions: ["i"],
    });
  });

  test("models on disk only (available, failed) hold nothing and are not evicted", () => {
    const n = node("a", {
      catalog: [entry("m"), entry("other"), entry("bad", { state: "failed", estimatedBytes: null, error: "x" })],
      maxLoaded: 1,
      budgetBytes: GB,
    });
    expect(placeLoad([n], "m", idle)).toEqual({ nodeID: "a", evictions: [] });
  });

  test("a node without the model in its catalog, or with no catalog, is skipped", () => {
    const other = node("a", { catalog: [entry("x")] });
    const bare = node("b", { catalog: [] });
    delete bare.catalog;
    expect(placeLoad([other, bare], "m", idle)).toBeNull();
  });

  test("null when it fits nowhere, or there are no nodes", () => {
    expect(placeLoad([], "m", idle)).toBeNull();
    const full = node("a", { catalog: [entry("m"), entry("p", { state: "ready", pinned: true })], maxLoaded: 1 });
    expect(placeLoad([full], "m", idle)).toBeNull();
  });
});
