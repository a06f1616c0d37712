/**
 * The balancer's kept candidates (lib/routing/candidates.ts): the same
 * answer as building them afresh, after every kind of change to the table
 * or to this router's counts.
 */
import { NodeHealth } from "../../../../lib/cluster/node-health";
import { NodeTable } from "../../../../lib/cluster/node-table";
import { CandidatePools, candidateOf, type RouterCounts } from "../../../../lib/routing/candidates";
import { heartbeat as hb } from "../../../helpers/candidates";

function setup(reachable: (id: string) => boolean = () => true) {
  const table = new NodeTable(reachable);
  const counts: RouterCounts = { inflight: new Map(), atReport: new Map(), latency: new Map(), last: new Map() };
  const health = new NodeHealth(2, 1000);
  const pools = new CandidatePools(() => table, counts, health);
  /** What building every candidate afresh gives. */
  const fresh = (model: string) => table.serving(model).map((n) => ({ ...candidateOf(n, model, counts) }));
  const kept = (model: string, exclude: string[] = [], now?: number) =>
    pools.eligible(model, exclude, now).map((c) => ({ ...c }));
  return { table, counts, health, pools, fresh, kept };
}

describe("CandidatePools", () => {
  test("a heartbeat's new figures reach the kept candidate once the node is refreshed", () => {
    const { table, pools, fresh, kept } = setup();
    table.upsert(hb("a", ["m"], { cpu: { usage: 10, cores: 8 } }));
    table.upsert(hb("b", ["m"]));
    const before = table.version;
    expect(kept("m")).toEqual(fresh("m"));
    table.upsert(hb("a", ["m"], { cpu: { usage: 90, cores: 8 }, tokensPerSecond: 42 }));
    // figures only: the table's shape is the same
    expect(table.version).toBe(before);
    pools.refresh("a");
    expect(kept("m")).toEqual(fresh("m"));
    expect(kept("m")[0]).toMatchObject({ nodeID: "a", cpuUsage: 90, tokensPerSecond: 42 });
  });

  test("this router's counts (in flight, latency, last use) show after a refresh", () => {
    const { counts, table, pools, fresh, kept } = setup();
    table.upsert(hb("a", ["m"]));
    expect(kept("m")[0]).toMatchObject({ active: 0, latencyMs: null, lastSelectedAt: 0 });
    counts.inflight.set("a", 3);
    counts.latency.set("a", 120);
    counts.last.set("a", 5000);
    pools.refresh("a");
    expect(kept("m")).toEqual(fresh("m"));
    expect(kept("m")[0]).toMatchObject({ active: 3, latencyMs: 120, lastSelectedAt: 5000 });
  });

  test("nodes joining, leaving, loading a model, draining or going offline change the candidates at once", () => {
    let reachableB = true;
    const { table, fresh, kept } = setup((id) => id !== "b" || reachableB);
    table.upsert(hb("a", ["m"]));
    expect(kept("m").map((c) => c.nodeID)).toEqual(["a"]);
    table.upsert(hb("b", ["m"]));
    expect(kept("m").map((c) => c.nodeID)).toEqual(["a", "b"]);
    table.upsert(hb("c", ["other"]));
    table.upsert(hb("c", ["other", "m"]));
    expect(kept("m").map((c) => c.nodeID)).toEqual(["a", "b", "c"]);
    table.setSettings("a", { displayName: null, tags: [], notes: "", draining: true });
    expect(kept("m").map((c) => c.nodeID)).toEqual(["b", "c"]);
    table.markOffline("c");
    expect(kept("m").map((c) => c.nodeID)).toEqual(["b"]);
    reachableB = false;
    table.touch();
    expect(kept("m")).toEqual([]);
    table.remove("a");
    table.upsert(hb("a", ["m"]));
    expect(kept("m").map((c) => c.nodeID)).toEqual(["a"]);
    expect(kept("m")).toEqual(fresh("m"));
  });

  test("excluded nodes are left out; benched ones too unless nothing else is left", () => {
    const { table, health, kept } = setup();
    table.upsert(hb("a", ["m"]));
    table.upsert(hb("b", ["m"]));
    expect(kept("m", ["a"]).map((c) => c.nodeID)).toEqual(["b"]);
    health.failure("a", 100);
    health.failure("a", 100);
    expect(kept("m", [], 200).map((c) => c.nodeID)).toEqual(["b"]);
    expect(kept("m", ["b"], 200).map((c) => c.nodeID)).toEqual(["a"]);
    // the bench is over
    expect(kept("m", [], 1200).map((c) => c.nodeID)).toEqual(["a", "b"]);
  });

  test("a model no node serves is not kept", () => {
    const { table, pools, kept } = setup();
    table.upsert(hb("a", ["m"]));
    for (let i = 0; i < 100; i++) expect(kept(`made-up-${i}`)).toEqual([]);
    expect((pools as unknown as { pools: Map<string, unknown> }).pools.size).toBe(0);
  });
});
