import { node, req } from "../../../helpers/candidates";
import { createStrategy, STRATEGY_NAMES, type Candidate } from "../../../../lib/strategies";
import { AutoStrategy, expectedCompletionMs, loadScore } from "../../../../lib/strategies/auto";
import { RoundRobinStrategy } from "../../../../lib/strategies/round-robin";
import { RandomStrategy } from "../../../../lib/strategies/random";

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
    expect(STRATEGY_NAMES).toEqual(["auto", "round_robin", "least_busy", "latency", "random", "affinity"]);
    expect(createStrategy("auto").name).toBe("auto");
    expect(createStrategy("round_robin").name).toBe("round_robin");
  });

  test("names the known modes for an unknown one", () => {
    expect(() => createStrategy("fastest")).toThrow(
      /Unknown load balancer mode "fastest"; known: auto, round_robin, least_busy, latency, random, affinity/,
    );
  });
});

describe("least_busy", () => {
  test("the smallest share of busy slots, least recently used among equals", () => {
    const s = createStrategy("least_busy");
    expect(s.select([node("a", { active: 2 }), node("b", { active: 1, cpuUsage: 99 })], req).nodeID).toBe("b");
    expect(s.select([node("a", { lastSelectedAt: 5 }), node("b", { lastSelectedAt: 3 })], req).nodeID).toBe("b");
  });
});

describe("latency", () => {
  test("the fastest to first token; unmeasured nodes first; full nodes passed over", () => {
    const s = createStrategy("latency");
    expect(s.select([node("a", { latencyMs: 40 }), node("b", { latencyMs: 15 })], req).nodeID).toBe("b");
    expect(s.select([node("a", { latencyMs: 40 }), node("b", { latencyMs: null })], req).nodeID).toBe("b");
    expect(s.select([node("a", { latencyMs: 40 }), node("b", { latencyMs: 15, active: 4 })], req).nodeID).toBe("a");
  });
});

describe("random", () => {
  test("weighted by free slots", () => {
    const pick = (r: number) => new RandomStrategy(() => r).select([node("a", { active: 3 }), node("b")], req).nodeID;
    // weights: a = 1.1, b = 4.1 (total 5.2)
    expect(pick(0)).toBe("a");
    expect(pick(0.2)).toBe("a"); // 1.04 < 1.1
    expect(pick(0.25)).toBe("b");
    expect(pick(0.99)).toBe("b");
    const full = new RandomStrategy(() => 0.5).select([node("a", { active: 4 }), node("b", { active: 4 })], req);
    expect(["a", "b"]).toContain(full.nodeID);
  });
});

describe("affinity", () => {
  test("a conversation sticks to its node while it has room, then moves with auto", () => {
    const s = createStrategy("affinity");
    const conv = { model: "m", affinityKey: "prefix:1" };
    const first = s.select([node("a", { lastSelectedAt: 9 }), node("b", { lastSelectedAt: 1 })], conv);
    expect(first.nodeID).toBe("b");
    // b is now busier than a, but keeps the conversation
    expect(s.select([node("a"), node("b", { active: 3 })], conv).nodeID).toBe("b");
    // b full: auto picks a, and the conversation follows
    expect(s.select([node("a"), node("b", { active: 4 })], conv).nodeID).toBe("a");
    expect(s.select([node("a", { active: 2 }), node("b")], conv).nodeID).toBe("a");
    // without a key it is plain auto
    expect(s.select([node("a", { active: 2 }), node("b")], req).nodeID).toBe("b");
  });
});

describe("auto speed terms", () => {
  test("a much slower node loses a near-tie", () => {
    const s = createStrategy("auto");
    expect(
      s.select(
        [node("a", { tokensPerSecond: 10, lastSelectedAt: 0 }), node("b", { tokensPerSecond: 100, lastSelectedAt: 5 })],
        req,
      ).nodeID,
    ).toBe("b");
    expect(
      s.select([node("a", { latencyMs: 500, lastSelectedAt: 0 }), node("b", { latencyMs: 50, lastSelectedAt: 5 })], req)
        .nodeID,
    ).toBe("b");
  });
});

describe("auto: nodes whose load alone rules them out are not scored", () => {
  // select skips a node whose load is over the lowest-load node's full score plus TIE
  const auto = new AutoStrategy();
  // idle but slow: load 0 + slowness 0.2 * 0.9 = 0.18
  const slowIdle = node("slow-idle", { tokensPerSecond: 10, lastSelectedAt: 5 });
  // GPU 40 %: load 0.12, fastest: 0.12
  const fast = node("fast", { gpuUtilization: 40, tokensPerSecond: 100, lastSelectedAt: 5 });
  // half busy: load 0.5, over 0.18 + TIE; the least recently used, but not a near-equal
  const busy = node("busy", { active: 2, tokensPerSecond: 100, lastSelectedAt: 0 });

  test("the speed terms can put the lowest-load node behind another", () => {
    expect(auto.select([slowIdle, fast, busy], req).nodeID).toBe("fast");
  });

  test("a near-equal of the best with more load than the lowest is still in the least-recently-used draw", () => {
    // GPU 50 %: load 0.15, within TIE of fast's 0.12, used less recently
    const older = node("older", { gpuUtilization: 50, tokensPerSecond: 100, lastSelectedAt: 1 });
    expect(auto.select([slowIdle, fast, busy, older], req).nodeID).toBe("older");
  });

  test("a NaN in the lowest-load node's figures skips nothing: the others are still ranked", () => {
    const bad = node("bad", { tokensPerSecond: NaN });
    const b = node("b", { active: 3, tokensPerSecond: 50, lastSelectedAt: 5 });
    const c = node("c", { active: 3, gpuUtilization: 50, tokensPerSecond: 50, lastSelectedAt: 0 });
    expect(auto.select([bad, b, c], req).nodeID).toBe("b");
  });
});

describe("auto: soonest expected answer once every node is measured", () => {
  const auto = new AutoStrategy();
  const fast = (id: string, over: Partial<Candidate> = {}) => node(id, { latencyMs: 100, ...over });
  const slow = node("slow", { latencyMs: 400 });

  test("waits for a fast node rather than take a free slot on a much slower one", () => {
    const chosen = auto.select([fast("f1", { active: 4 }), fast("f2", { active: 4 }), slow], req);
    expect(chosen.nodeID).toMatch(/^f/);
    expect(chosen.active).toBe(4); // full: the balancer turns this into "wait for a slot there"
  });

  test("takes the slow node when the wait for a fast one grows past its service time", () => {
    const chosen = auto.select([fast("f1", { active: 4 }), fast("f2", { active: 4 }), slow], {
      ...req,
      waitingAhead: 16,
    });
    expect(chosen.nodeID).toBe("slow");
  });

  test("a fast node with room wins; unmeasured clusters fall back to load", () => {
    expect(auto.select([fast("f1", { active: 2 }), slow], req).nodeID).toBe("f1");
    expect(auto.select([node("a", { active: 3 }), node("b", { active: 1, latencyMs: 10 })], req).nodeID).toBe("b");
  });

  test("expectedCompletionMs counts the requests ahead per slot", () => {
    expect(expectedCompletionMs(fast("f"))).toBe(100);
    expect(expectedCompletionMs(fast("f", { active: 4 }))).toBe(125);
    expect(expectedCompletionMs(fast("f", { active: 4 }), 3)).toBe(200);
  });
});

describe("auto on large clusters", () => {
  /** A deterministic pseudo-random cluster of `n` nodes (some unmeasured when `measured` is false). */
  function cluster(n: number, seed: number, measured: boolean) {
    let x = seed;
    const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    return Array.from({ length: n }, (_, i) =>
      node(`n${String(i).padStart(5, "0")}`, {
        // many full nodes, some of them near the soonest expected answer (large capacity, one ahead)
        capacity: 1 + Math.floor(rnd() * 16),
        active: Math.floor(rnd() * 17),
        queued: rnd() < 0.1 ? 1 : 0,
        cpuUsage: Math.round(rnd() * 100),
        gpuUtilization: rnd() < 0.5 ? Math.round(rnd() * 100) : null,
        vramFreeRatio: rnd() < 0.5 ? rnd() : null,
        tokensPerSecond: rnd() < 0.8 ? 10 + rnd() * 90 : 0,
        latencyMs: measured || rnd() < 0.7 ? 100 + rnd() * 15 : null,
        lastSelectedAt: Math.floor(rnd() * 1000),
      }),
    );
  }

  /** The reference choice, from the detailed path: rank the staged pool by load score, then least recent. */
  function reference(cs: ReturnType<typeof cluster>, waitingAhead: number) {
    const explained = new AutoStrategy().explain(cs, { model: "m", waitingAhead });
    const considered = explained.candidates.filter((c) => c.factors.considered);
    const best = Math.min(...considered.map((c) => c.factors.load_score as number));
    const near = considered.filter((c) => (c.factors.load_score as number) <= best + 0.05);
    const byId = new Map(cs.map((c) => [c.nodeID, c]));
    return near.reduce((a, b) => (byId.get(b.nodeID)!.lastSelectedAt < byId.get(a.nodeID)!.lastSelectedAt ? b : a))
      .nodeID;
  }

  // past 1,024 nodes the select path grows its scratch space; decisions stay the same as the detailed ranking
  test.each([
    [50, 1, false],
    [1000, 2, true],
    [3000, 3, false],
    [3000, 4, true],
    [200, 5, true],
  ])("%i nodes (seed %i, all measured: %s): select agrees with ranking the load scores", (n, seed, measured) => {
    const cs = cluster(n, seed, measured);
    const auto = new AutoStrategy();
    for (const waitingAhead of [0, 3]) {
      expect(auto.select(cs, { model: "m", waitingAhead }).nodeID).toBe(reference(cs, waitingAhead));
    }
    // a smaller cluster after a larger one: the scratch space holds nothing over
    const small = cluster(5, seed + 10, measured);
    expect(auto.select(small, req).nodeID).toBe(reference(small, 0));
  });
});

describe("auto: a node with a free slot goes before a full one with a lower load score", () => {
  // full: busy 1.0 and nothing else; free: busy 0.9 + GPU 100 % (0.3) + VRAM full (0.1) = 1.3
  const full = (over = {}) => node("full", { capacity: 16, active: 16, ...over });
  const free = (over = {}) => node("free", { capacity: 10, active: 9, gpuUtilization: 100, vramFreeRatio: 0, ...over });

  test("before every node is measured", () => {
    expect(new AutoStrategy().select([full(), free()], req).nodeID).toBe("free");
  });

  test("once measured, among nodes whose expected answer is near the soonest", () => {
    // full: one ahead of 16 slots → 100 + 6.25 ms, within 10 % of free's 100 ms
    const cs = [full({ latencyMs: 100 }), free({ latencyMs: 100 })];
    expect(expectedCompletionMs(cs[0])).toBeLessThanOrEqual(110);
    expect(new AutoStrategy().select(cs, req).nodeID).toBe("free");
  });
});
