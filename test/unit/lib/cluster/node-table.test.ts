import type { CatalogEntry } from "../../../../lib/cluster/types";
import { NodeTable } from "../../../../lib/cluster/node-table";
import { nodeView } from "../../../../lib/cluster/node-view";
import { heartbeat as hb } from "../../../helpers/candidates";

describe("NodeTable", () => {
  test("a heartbeat adds a node; initializing nodes do not serve", () => {
    const t = new NodeTable();
    expect(t.upsert(hb("a", ["m"], { initializing: true }), 1000)).toBe(true);
    expect(t.get("a")?.status).toBe("initializing");
    expect(t.serving("m")).toEqual([]);
    expect(t.knows("m")).toBe(true);
    expect(t.upsert(hb("a", ["m"]), 2000)).toBe(true);
    expect(t.serving("m").map((n) => n.id)).toEqual(["a"]);
    expect(t.upsert(hb("a", ["m"]), 3000)).toBe(false);
    expect(t.get("a")?.registeredAt).toBe(new Date(1000).toISOString());
    expect(t.get("a")?.lastSeen).toBe(new Date(3000).toISOString());
  });

  test("silent nodes expire; a new heartbeat brings them back", () => {
    const t = new NodeTable();
    t.upsert(hb("a", ["m"]), 0);
    t.upsert(hb("b", ["m"]), 50_000);
    expect(t.expire(61_000, 60_000)).toEqual(["a"]);
    expect(t.expire(62_000, 60_000)).toEqual([]);
    expect(t.serving("m").map((n) => n.id)).toEqual(["b"]);
    t.upsert(hb("a", ["m"]), 63_000);
    expect(t.get("a")?.status).toBe("online");
  });

  test("markOffline clears load and removes the node from serving", () => {
    const t = new NodeTable();
    t.upsert(hb("a", ["m"], { active: 3 }));
    expect(t.markOffline("a")).toBe(true);
    expect(t.markOffline("a")).toBe(false);
    expect(t.markOffline("ghost")).toBe(false);
    expect(t.get("a")).toMatchObject({ status: "offline", active: 0 });
  });

  test("nodes not reachable over the transporter do not serve", () => {
    const reachable = new Set(["b"]);
    const t = new NodeTable((id) => reachable.has(id));
    t.upsert(hb("a", ["m"]));
    t.upsert(hb("b", ["m"]));
    expect(t.serving("m").map((n) => n.id)).toEqual(["b"]);
    expect(t.models()).toEqual([
      { id: "m", created: expect.any(Number), status: "loaded", nodes: ["b"], available_on: [] },
    ]);
  });

  test("models() merges the models of online nodes", () => {
    const t = new NodeTable();
    t.upsert(hb("a", ["x", "y"]), 5000);
    t.upsert(hb("b", ["y"]), 9000);
    t.upsert(hb("c", ["z"]));
    t.markOffline("c");
    expect(t.models()).toEqual([
      { id: "x", created: 5, status: "loaded", nodes: ["a"], available_on: [] },
      { id: "y", created: 5, status: "loaded", nodes: ["a", "b"], available_on: [] },
    ]);
  });

  test("models on a node's disk are listed as available, and can be loaded there", () => {
    const t = new NodeTable();
    const entry = (id: string, state: CatalogEntry["state"], error: string | null = null): CatalogEntry => ({
      id,
      sizeBytes: 10,
      quantization: "F16",
      estimatedBytes: 100,
      state,
      error,
      pinned: false,
      inUse: 0,
      memoryBytes: state === "ready" || state === "loading" ? 100 : 0,
      lastUsedAt: null,
      loadMs: null,
      loads: 0,
    });
    t.upsert({
      ...hb("a", ["x"]),
      catalog: [entry("x", "ready"), entry("y", "available"), entry("bad", "failed", "not a GGUF")],
    });
    t.upsert({ ...hb("b", []), catalog: [entry("y", "loading")] });
    expect(t.models()).toEqual([
      { id: "x", created: expect.any(Number), status: "loaded", nodes: ["a"], available_on: [] },
      { id: "y", created: expect.any(Number), status: "available", nodes: [], available_on: ["a", "b"] },
    ]);
    expect(t.knows("y")).toBe(true);
    expect(t.knows("bad")).toBe(true);
    expect(t.loadable("y").map((n) => n.id)).toEqual(["a"]);
    expect(t.loading("y").map((n) => n.id)).toEqual(["b"]);
    expect(t.loadFailures("bad")).toEqual([{ node: "a", error: "not a GGUF" }]);
    expect(t.serving("y")).toEqual([]);
  });

  test("the API view has the seed's fields, GPUs counted by model", () => {
    const t = new NodeTable();
    const gpu = { name: "NVIDIA RTX 4090", utilization: 40, vramUsed: 1, vramTotal: 4 };
    t.upsert(hb("a", ["m"], { gpus: [gpu, gpu], memory: { used: 1, total: 4 } }));
    const v = nodeView(t.get("a")!, "10.0.0.2");
    expect(v).toMatchObject({
      id: "a",
      machine_name: "host-a",
      ip_address: "10.0.0.2",
      status: "online",
      gpu_available: true,
      gpu_devices: [{ model: "NVIDIA RTX 4090", count: 2 }],
      gpu_count: 2,
      gpu_model: "NVIDIA RTX 4090",
      memory_usage: 25,
      models: ["m"],
    });
  });
});
