import { createStrategy, STRATEGY_NAMES, type Candidate } from "../../lib/strategies";
import { AutoStrategy, loadScore } from "../../lib/strategies/auto";
import { RoundRobinStrategy } from "../../lib/strategies/round-robin";

function node(nodeID: string, over: Partial<Candidate> = {}): Candidate {
  return {
    nodeID,
    machineName: nodeID,
    capacity: 4,
    active: 0,
    queued: 0,
    cpuUsage: 0,
    gpuUtilization: null,
    vramFreeRatio: null,
    tokensPerSecond: 0,
    lastSelectedAt: 0,
    ...over,
  };
}
const req = { model: "m" };

describe("auto strategy", () => {
  const auto = new AutoStrategy();

  test("picks the node with free slots over a busy one", () => {
    expect(auto.select([node("a", { active: 3 }), node("b", { active: 1 })], req).nodeID).toBe("b");
  });

  test("counts queued requests as load", () => {
    expect(auto.select([node("a", { active: 4, queued: 2 }), node("b", { active: 4 })], req).nodeID).toBe("b");
  });

  test("relative to capacity: 2 of 8 busy beats 1 of 2", () => {
    expect(
      auto.select([node("a", { active: 1, capacity: 2 }), node("b", { active: 2, capacity: 8 })], req).nodeID,
    ).toBe("b");
  });

  test("prefers the idle GPU and the one with free VRAM when slots are equal", () => {
    expect(auto.select([node("a", { gpuUtilization: 90 }), node("b", { gpuUtilization: 10 })], req).nodeID).toBe("b");
    expect(auto.select([node("a", { vramFreeRatio: 0.05 }), node("b", { vramFreeRatio: 0.9 })], req).nodeID).toBe("b");
  });

  test("GPU utilisation, when known, outranks CPU use", () => {
    const a = node("a", { gpuUtilization: 5, cpuUsage: 90 });
    const b = node("b", { gpuUtilization: 80, cpuUsage: 0 });
    expect(auto.select([a, b], req).nodeID).toBe("a");
  });

  test("among near-equal nodes, the least recently used wins", () => {
    const a = node("a", { lastSelectedAt: 2000 });
    const b = node("b", { lastSelectedAt: 1000, cpuUsage: 5 });
    expect(auto.select([a, b], req).nodeID).toBe("b");
  });

  test("score grows with every load signal", () => {
    const base = loadScore(node("x"));
    expect(loadScore(node("x", { active: 1 }))).toBeGreaterThan(base);
    expect(loadScore(node("x", { queued: 1 }))).toBeGreaterThan(base);
    expect(loadScore(node("x", { cpuUsage: 50 }))).toBeGreaterThan(base);
    expect(loadScore(node("x", { vramFreeRatio: 0.5 }))).toBeGreaterThan(base);
  });
});

describe("round_robin strategy", () => {
  test("takes each node in turn in node-ID order, whatever the input order", () => {
    const rr = new RoundRobinStrategy();
    const picks = [0, 1, 2, 3].map(
      (i) => rr.select(i % 2 ? [node("b"), node("a")] : [node("a"), node("b")], req).nodeID,
    );
    expect(picks).toEqual(["a", "b", "a", "b"]);
  });

  test("keeps going when the set shrinks", () => {
    const rr = new RoundRobinStrategy();
    rr.select([node("a"), node("b"), node("c")], req);
    expect(rr.select([node("a")], req).nodeID).toBe("a");
  });
});

describe("strategy registry", () => {
  test("knows auto and round_robin", () => {
    expect(STRATEGY_NAMES).toEqual(expect.arrayContaining(["auto", "round_robin"]));
    expect(createStrategy("auto").name).toBe("auto");
    expect(createStrategy("round_robin").name).toBe("round_robin");
  });

  test("names the known modes for an unknown one", () => {
    expect(() => createStrategy("fastest")).toThrow(/Unknown load balancer mode "fastest"; known: auto, round_robin/);
  });
});
