/** Each strategy's `explain`: the same pick as `select`, its numbers, and no side effects. */
import { node, req } from "../../../helpers/candidates";
import { createStrategy, STRATEGY_NAMES, type Candidate } from "../../../../lib/strategies";
import { AutoStrategy, expectedCompletionMs, loadScores } from "../../../../lib/strategies/auto";
import { RandomStrategy } from "../../../../lib/strategies/random";
import { RoundRobinStrategy } from "../../../../lib/strategies/round-robin";

describe("explain agrees with select", () => {
  const sets: Candidate[][] = [
    [node("a", { active: 3 }), node("b", { active: 1 })],
    [node("a", { gpuUtilization: 90 }), node("b", { gpuUtilization: 10 })],
    [node("a", { latencyMs: 100, active: 4 }), node("b", { latencyMs: 400 })],
    [node("a", { lastSelectedAt: 5 }), node("b", { lastSelectedAt: 3, tokensPerSecond: 30 })],
  ];
  for (const name of STRATEGY_NAMES.filter((n) => n !== "random")) {
    test(name, () => {
      for (const cs of sets) {
        const s = createStrategy(name);
        const ex = s.explain(cs, req);
        expect(ex.strategy).toBe(name);
        expect(ex.rule).toEqual(expect.any(String));
        expect(ex.candidates.map((c) => c.nodeID).sort()).toEqual(cs.map((c) => c.nodeID).sort());
        expect(ex.picked).toBe(s.select(cs, req).nodeID);
      }
    });
  }
});

describe("auto", () => {
  const auto = new AutoStrategy();

  test("before every node is measured: load scores, free slots, utilisation", () => {
    const ex = auto.explain([node("a", { active: 2, gpuUtilization: 50, vramFreeRatio: 0.25 }), node("b")], req);
    expect(ex.rule).toMatch(/lowest load score/);
    const a = ex.candidates.find((c) => c.nodeID === "a")!;
    expect(a.factors).toMatchObject({
      free_slots: 2,
      busy_ratio: 0.5,
      gpu_util: 50,
      vram_used_ratio: 0.75,
      expected_ms: null,
      considered: true,
    });
    // busy 0.5 + utilisation 0.3 * 0.5 + VRAM 0.1 * 0.75
    expect(a.score).toBeCloseTo(0.725);
    expect(ex.candidates.find((c) => c.nodeID === "b")!.score).toBe(0);
    expect(ex.picked).toBe("b");
  });

  test("every node measured: expected answer time, wait and service time; the slow node not considered", () => {
    const cs = [
      node("f1", { latencyMs: 100, active: 4 }),
      node("f2", { latencyMs: 100 }),
      node("slow", { latencyMs: 400 }),
    ];
    const ex = auto.explain(cs, req);
    expect(ex.rule).toMatch(/soonest expected answer/);
    const byId = Object.fromEntries(ex.candidates.map((c) => [c.nodeID, c]));
    expect(byId.f1.score).toBe(expectedCompletionMs(cs[0]));
    expect(byId.f1.factors).toMatchObject({ expected_wait_ms: 25, service_ms: 100, expected_ms: 125, free_slots: 0 });
    expect(byId.slow.factors).toMatchObject({ expected_ms: 400, considered: false, load_score: null });
    expect(ex.picked).toBe("f2");
  });

  test("loadScores adds the speed terms relative to the pool", () => {
    const [slow, fast] = loadScores([node("s", { tokensPerSecond: 10 }), node("f", { tokensPerSecond: 40 })]);
    expect(slow.slowness).toBeCloseTo(0.75);
    expect(fast.slowness).toBe(0);
    expect(slow.score).toBeCloseTo(0.2 * 0.75);
  });
});

describe("side effects", () => {
  test("round_robin: explain shows the next turn without taking it", () => {
    const rr = new RoundRobinStrategy();
    const cs = [node("b"), node("a"), node("c")];
    rr.select(cs, req); // a
    const ex = rr.explain(cs, req);
    expect(ex.picked).toBe("b");
    expect(ex.candidates.map((c) => [c.nodeID, c.score])).toEqual([
      ["a", 2],
      ["b", 0],
      ["c", 1],
    ]);
    expect(rr.explain(cs, req).picked).toBe("b");
    expect(rr.select(cs, req).nodeID).toBe("b");
  });

  test("affinity: the conversation's owner, flagged; explaining remembers nothing", () => {
    const s = createStrategy("affinity");
    const conv = { model: "m", affinityKey: "k" };
    const fresh = s.explain([node("a"), node("b", { lastSelectedAt: 5 })], conv);
    expect(fresh.picked).toBe("a");
    expect(fresh.candidates.every((c) => c.factors.owns_conversation === false)).toBe(true);
    // explain did not make "a" the owner: select decides by auto and remembers "b"
    expect(s.select([node("a", { active: 1 }), node("b")], conv).nodeID).toBe("b");
    const ex = s.explain([node("a"), node("b", { active: 2 })], conv);
    expect(ex.picked).toBe("b");
    expect(ex.rule).toMatch(/keeps the conversation/);
    expect(ex.candidates.find((c) => c.nodeID === "b")!.factors.owns_conversation).toBe(true);
    expect(s.explain([node("a"), node("b", { active: 4 })], conv).rule).toMatch(/auto decides/);
  });

  test("random: chance decides; scores are the probabilities", () => {
    const ex = new RandomStrategy(() => 0).explain([node("a", { active: 3 }), node("b")], req);
    expect(ex.picked).toBeNull();
    expect(ex.candidates[0].score).toBeCloseTo(1.1 / 5.2);
    expect(ex.candidates[1].score).toBeCloseTo(4.1 / 5.2);
    expect(ex.candidates[1].factors).toEqual({ free_slots: 4, weight: 4.1 });
  });

  test("least_busy and latency: their one number", () => {
    const lb = createStrategy("least_busy").explain([node("a", { active: 1, queued: 1 })], req);
    expect(lb.candidates[0]).toMatchObject({
      score: 0.5,
      factors: { active: 1, queued: 1, capacity: 4, free_slots: 2 },
    });
    const lat = createStrategy("latency").explain(
      [node("a", { latencyMs: 40 }), node("b", { latencyMs: 9, active: 4 })],
      req,
    );
    expect(lat.picked).toBe("a");
    expect(lat.candidates[1]).toMatchObject({ score: 9, factors: { considered: false } });
  });
});
