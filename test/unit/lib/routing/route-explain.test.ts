/** lib/routing/explain.ts: candidates, filtered nodes and the verdict, as balancer.explain answers. */
import type { NodeRecord } from "../../../../lib/cluster/types";
import { explainRoute, type ExplainInput } from "../../../../lib/routing/explain";
import { createStrategy, type Candidate } from "../../../../lib/strategies";

function record(id: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    nodeID: id,
    machineName: `m-${id}`,
    engine: "llama",
    initializing: false,
    models: [{ id: "m", contextSize: 2048, parallel: 2, sizeBytes: 1, active: 0, queued: 0 }],
    active: 0,
    queued: 0,
    capacity: 2,
    cpu: { usage: 10, cores: 4 },
    memory: { used: 1, total: 2 },
    gpuBackend: false,
    gpus: [],
    tokensPerSecond: 20,
    status: "online",
    registeredAt: "",
    lastSeen: "",
    ...over,
  };
}

function cand(id: string, over: Partial<Candidate> = {}): Candidate {
  return {
    nodeID: id,
    machineName: `m-${id}`,
    capacity: 2,
    active: 0,
    queued: 0,
    cpuUsage: 10,
    gpuUtilization: null,
    vramFreeRatio: null,
    tokensPerSecond: 20,
    latencyMs: null,
    lastSelectedAt: 0,
    ...over,
  };
}

function input(over: Partial<ExplainInput>): ExplainInput {
  return {
    router: "r1",
    model: "m",
    strategy: createStrategy("auto"),
    candidates: [],
    nodes: [],
    serving: [],
    draining: () => false,
    benched: () => false,
    queued: 0,
    ...over,
  };
}

test("names the pick, scores every candidate and says why the others are left out", () => {
  const nodes = [
    record("a"),
    record("b"),
    record("c", { status: "offline" }),
    record("d"),
    record("e", { status: "initializing" }),
    record("f"),
    record("x", { models: [] }),
  ];
  const ex = explainRoute(
    input({
      nodes,
      candidates: [cand("a", { active: 1 }), cand("b")],
      serving: ["a", "b", "f"],
      draining: (id) => id === "d",
      benched: (id) => id === "f",
    }),
  );
  expect(ex).toMatchObject({ router: "r1", model: "m", strategy: "auto", picked: "b", verdict: "send to b" });
  expect(ex.candidates.map((c) => [c.nodeID, c.chosen, c.seen, c.active, c.capacity])).toEqual([
    ["a", false, true, 1, 2],
    ["b", true, true, 0, 2],
  ]);
  expect(ex.filtered).toEqual([
    { nodeID: "c", reason: "offline" },
    { nodeID: "d", reason: "draining" },
    { nodeID: "e", reason: "initializing (loading models)" },
    { nodeID: "f", reason: expect.stringMatching(/^benched/) },
  ]);
});

test("a strategy that sees only free slots: full nodes filtered, and wait when all are full", () => {
  const strategy = createStrategy("least_busy");
  const nodes = [record("a"), record("b")];
  const some = explainRoute(
    input({ strategy, nodes, serving: ["a", "b"], candidates: [cand("a", { active: 2 }), cand("b")] }),
  );
  expect(some.picked).toBe("b");
  expect(some.filtered).toEqual([{ nodeID: "a", reason: "full (2/2 slots busy)" }]);
  expect(some.candidates.map((c) => c.nodeID)).toEqual(["b"]);
  const all = explainRoute(
    input({ strategy, nodes, serving: ["a", "b"], candidates: [cand("a", { active: 2 }), cand("b", { queued: 2 })] }),
  );
  expect(all.picked).toBeNull();
  expect(all.verdict).toBe("wait: every node with the model is full");
  expect(all.candidates.every((c) => !c.seen && !c.chosen)).toBe(true);
});

test("auto may choose a full node: wait for a slot there; a queue ahead is said first", () => {
  const ex = explainRoute(
    input({
      nodes: [record("f"), record("s")],
      serving: ["f", "s"],
      candidates: [cand("f", { latencyMs: 100, active: 2 }), cand("s", { latencyMs: 900 })],
      queued: 1,
    }),
  );
  expect(ex.picked).toBe("f");
  expect(ex.verdict).toBe("wait: 1 request(s) for this model queued ahead, then wait for a slot on f");
});

test("no candidates: loading, unknown model (404) or nobody ready (503)", () => {
  expect(explainRoute(input({ nodes: [record("a", { status: "initializing" })] })).verdict).toMatch(/^wait: .*loading/);
  expect(explainRoute(input({ model: "nope", nodes: [record("a")] })).verdict).toMatch(/^404 model_not_found/);
  const gone = explainRoute(input({ nodes: [record("a", { status: "offline" })] }));
  expect(gone.verdict).toMatch(/^503 no_available_node/);
  expect(gone.filtered).toEqual([{ nodeID: "a", reason: "offline" }]);
});

test("benched nodes used when nothing else is left carry a note; random leaves the pick to chance", () => {
  const ex = explainRoute(
    input({
      strategy: createStrategy("random"),
      nodes: [record("a")],
      serving: ["a"],
      candidates: [cand("a")],
      benched: () => true,
    }),
  );
  expect(ex.picked).toBeNull();
  expect(ex.verdict).toMatch(/chance decides/);
  expect(ex.candidates[0].note).toBe("benched, but no other node is left");
});
