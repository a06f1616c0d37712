/**
 * `auto` and conversations (lib/strategies/auto.ts): a conversation's next turn
 * goes back to the node that served it last (its KV cache) while that node has
 * a free slot and is nearly as good as the load's own choice.
 */
import { node } from "../../../helpers/candidates";
import { AutoStrategy } from "../../../../lib/strategies/auto";
import type { Candidate } from "../../../../lib/strategies";

const conv = (key: string) => ({ model: "m", affinityKey: key });

/** Two idle nodes where `a` was used last: by load alone, `b` (least recently used) is next. */
const pair = (a: Partial<Candidate> = {}, b: Partial<Candidate> = {}) => [
  node("a", { lastSelectedAt: 2000, ...a }),
  node("b", { lastSelectedAt: 1000, ...b }),
];

describe("auto: a conversation stays on its node", () => {
  test("the next turn goes back to the node that served the first, where load alone would alternate", () => {
    const auto = new AutoStrategy();
    expect(auto.select(pair(), conv("k")).nodeID).toBe("b");
    // b is now the most recently used: by load alone a would be next
    const next = pair({ lastSelectedAt: 1000 }, { lastSelectedAt: 2000, active: 1 });
    expect(auto.byLoad(next, conv("k")).nodeID).toBe("a");
    expect(auto.select(next, conv("k")).nodeID).toBe("b");
    // another conversation, or none, is decided by load
    expect(auto.select(next, conv("other")).nodeID).toBe("a");
    expect(auto.select(next, { model: "m" }).nodeID).toBe("a");
  });

  test("a full node loses the conversation, which then stays where it moved", () => {
    const auto = new AutoStrategy();
    auto.select([node("a"), node("b", { active: 3 })], conv("k")); // a
    expect(auto.select([node("a", { active: 4 }), node("b")], conv("k")).nodeID).toBe("b");
    expect(auto.select([node("a"), node("b", { active: 1 })], conv("k")).nodeID).toBe("b");
  });

  test("measured nodes: kept while its expected answer is at most twice the chosen node's", () => {
    const auto = new AutoStrategy();
    auto.select([node("a", { latencyMs: 100 }), node("b", { latencyMs: 300 })], conv("k")); // a
    // a is now slower: 190 vs 100 ms keeps it (its cache saves the conversation's prompt), 210 vs 100 does not
    expect(auto.select([node("a", { latencyMs: 190 }), node("b", { latencyMs: 100 })], conv("k")).nodeID).toBe("a");
    expect(auto.select([node("a", { latencyMs: 210 }), node("b", { latencyMs: 100 })], conv("k")).nodeID).toBe("b");
  });

  test("a node four times slower never keeps a conversation (the mixed-speed cluster)", () => {
    const auto = new AutoStrategy();
    // the conversation landed on the slow node while the fast one was full
    auto.select([node("fast", { latencyMs: 100, active: 4 }), node("slow", { latencyMs: 400 })], conv("k"));
    expect(auto.select([node("fast", { latencyMs: 100 }), node("slow", { latencyMs: 400 })], conv("k")).nodeID).toBe(
      "fast",
    );
  });

  test("not yet measured: kept while its load score is within 0.5 of the chosen node's", () => {
    const auto = new AutoStrategy();
    auto.select([node("a"), node("b", { active: 2 })], conv("k")); // a
    // 2 of 4 slots busier (0.5) keeps it; 3 of 4 (0.75) does not
    expect(auto.select([node("a", { active: 2 }), node("b")], conv("k")).nodeID).toBe("a");
    expect(auto.select([node("a", { active: 3 }), node("b")], conv("k")).nodeID).toBe("b");
  });

  test("a conversation whose node left the cluster goes where the load says", () => {
    const auto = new AutoStrategy();
    auto.select([node("a"), node("b", { active: 3 })], conv("k")); // a
    expect(auto.select([node("b"), node("c", { active: 1 })], conv("k")).nodeID).toBe("b");
  });

  test("explain names the conversation's node and the rule, and remembers nothing", () => {
    const auto = new AutoStrategy();
    auto.select(pair(), conv("k")); // b
    const next = pair({ lastSelectedAt: 1000 }, { lastSelectedAt: 2000, active: 1 });
    const e = auto.explain(next, conv("k"));
    expect(e.picked).toBe("b");
    expect(e.rule).toMatch(/conversation's node/);
    expect(e.candidates.find((c) => c.nodeID === "b")?.factors.owns_conversation).toBe(true);
    expect(e.candidates.find((c) => c.nodeID === "a")?.factors.owns_conversation).toBe(false);
    // explaining another conversation's route (to a) did not make a its node: load alone picks b
    expect(auto.explain(next, conv("new")).picked).toBe("a");
    expect(auto.select(pair(), conv("new")).nodeID).toBe("b");
  });
});
