/**
 * Token lanes (lib/cluster/token-lanes.ts): a node's streams to one router
 * in one message per window; the router's sinks fed from them.
 */
import { PassThrough } from "node:stream";
import { once } from "node:events";
import { LaneReceiver } from "../../../../lib/cluster/lane-receiver";
import { NOT_READY } from "../../../../lib/inference/coalesce";
import { LaneSender, LANE_MAX_CHUNKS, type LaneEntry } from "../../../../lib/cluster/token-lanes";

const turn = () => new Promise((r) => setImmediate(r));
const plain = (err: Error) => ({ name: err.name, message: err.message, code: 502 });

function sender(windowMs = 20) {
  const sent: Array<{ to: string; entries: LaneEntry[] }> = [];
  const lanes = new LaneSender({
    windowMs,
    send: (to, entries) => void sent.push({ to, entries: structuredClone(entries) }),
    plain,
  });
  return { lanes, sent };
}

describe("a node's lane to a router", () => {
  test("a stream's first chunk goes on the next turn; later ones of every stream together, once a window", async () => {
    const { lanes, sent } = sender(20);
    const a = new PassThrough({ objectMode: true });
    const b = new PassThrough({ objectMode: true });
    lanes.attach("router-1", "a", a);
    lanes.attach("router-1", "b", b);
    a.write({ t: "a0" });
    b.write({ t: "b0" });
    await turn();
    await turn();
    // both first chunks, in one message
    expect(sent).toEqual([
      {
        to: "router-1",
        entries: [
          ["a", [{ t: "a0" }], 0],
          ["b", [{ t: "b0" }], 0],
        ],
      },
    ]);
    a.write({ t: "a1" });
    b.write([{ t: "b1" }, { t: "b2" }]); // a batch is read as its chunks
    a.write({ t: "a2" });
    await turn();
    expect(sent).toHaveLength(1); // they wait for the window
    await new Promise((r) => setTimeout(r, 40));
    expect(sent[1].entries).toEqual([
      ["a", [{ t: "a1" }, { t: "a2" }], 0],
      ["b", [{ t: "b1" }, { t: "b2" }], 0],
    ]);
  });

  test("a first chunk or an end goes on alone: the other streams' chunks keep waiting for the window", async () => {
    const { lanes, sent } = sender(30);
    const a = new PassThrough({ objectMode: true });
    const b = new PassThrough({ objectMode: true });
    lanes.attach("r", "a", a);
    a.write({ t: "a0" });
    await turn();
    await turn();
    a.write({ t: "a1" });
    // b starts and ends while a's second chunk waits
    lanes.attach("r", "b", b);
    b.write({ t: "b0" });
    await turn();
    await turn();
    b.end();
    await once(b, "end");
    await turn();
    await turn();
    expect(sent.map((m) => m.entries)).toEqual([[["a", [{ t: "a0" }], 0]], [["b", [{ t: "b0" }], 0]], [["b", [], 1]]]);
    await new Promise((r) => setTimeout(r, 50));
    expect(sent[3].entries).toEqual([["a", [{ t: "a1" }], 0]]);
  });

  test("an end goes on at once; an error before any chunk too, in its plain form", async () => {
    const { lanes, sent } = sender(10_000);
    const a = new PassThrough({ objectMode: true });
    const b = new PassThrough({ objectMode: true });
    lanes.attach("r", "a", a);
    lanes.attach("r", "b", b);
    a.write({ t: 1 });
    a.end();
    b.destroy(new Error("no slot"));
    await once(a, "end").catch(() => undefined);
    await turn();
    await turn();
    const entries = sent.flatMap((m) => m.entries);
    expect(entries).toContainEqual(["a", [{ t: 1 }], 1]);
    expect(entries).toContainEqual(["b", [], { name: "Error", message: "no slot", code: 502 }]);
  });

  test("each router has its own lane; a router that left stops its lane and names its open requests", async () => {
    const { lanes, sent } = sender(5);
    const a = new PassThrough({ objectMode: true });
    const b = new PassThrough({ objectMode: true });
    lanes.attach("r1", "a", a);
    lanes.attach("r2", "b", b);
    a.write({ t: 1 });
    b.write({ t: 2 });
    await turn();
    await turn();
    expect(sent.map((m) => m.to).sort()).toEqual(["r1", "r2"]);
    expect(lanes.routerLost("r1")).toEqual(["a"]);
    expect(lanes.routerLost("r1")).toEqual([]);
    a.write({ t: 3 });
    await new Promise((r) => setTimeout(r, 20));
    expect(sent.filter((m) => m.to === "r1")).toHaveLength(1);
    expect(lanes.size).toBe(1);
  });

  test("a router that stops answering has its lane held: back in time, it gets everything in order; not, its streams stop", async () => {
    const { lanes, sent } = sender(5);
    const a = new PassThrough({ objectMode: true });
    lanes.attach("r", "a", a);
    a.write({ t: 0 });
    await turn();
    await turn();
    expect(sent).toHaveLength(1);
    const expired = jest.fn();
    lanes.routerGone("r", 10_000, expired);
    a.write({ t: 1 });
    a.write({ t: 2 });
    a.end();
    await once(a, "end");
    await new Promise((r) => setTimeout(r, 30));
    expect(sent).toHaveLength(1); // held
    lanes.routerBack("r");
    expect(sent[1].entries).toEqual([["a", [{ t: 1 }, { t: 2 }], 1]]);
    expect(expired).not.toHaveBeenCalled();

    const b = new PassThrough({ objectMode: true });
    lanes.attach("r", "b", b);
    b.write({ t: 0 });
    lanes.routerGone("r", 20, expired);
    b.write({ t: 1 });
    await new Promise((r) => setTimeout(r, 60));
    expect(expired).toHaveBeenCalledWith(["b"]);
    expect(lanes.size).toBe(0);
    expect(sent).toHaveLength(2);
  });

  test("a message holds at most LANE_MAX_CHUNKS chunks (more go in the next, at once)", async () => {
    const { lanes, sent } = sender(10_000);
    const streams = Array.from({ length: 3 }, (_, i) => {
      const s = new PassThrough({ objectMode: true, highWaterMark: 10_000 });
      lanes.attach("r", `s${i}`, s);
      return s;
    });
    await turn();
    for (const s of streams) s.write(Array.from({ length: LANE_MAX_CHUNKS / 2 + 1 }, (_, j) => j));
    await turn();
    await turn();
    const sizes = sent.map((m) => m.entries.reduce((n, e) => n + e[1].length, 0));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(3 * (LANE_MAX_CHUNKS / 2 + 1));
    expect(sent.length).toBeGreaterThan(1);
  });
});

describe("a router's lane sinks", () => {
  const restore = (p: Record<string, unknown>, from: string) =>
    Object.assign(new Error(String(p.message)), { code: p.code, nodeID: from });

  test("entries feed their sinks in order: chunks, batches of chunks, the end", async () => {
    const rx = new LaneReceiver(restore);
    const sink = rx.open("req-1", "node-a");
    rx.deliver("node-a", [["req-1", [{ t: 0 }], 0]]);
    rx.deliver("node-a", [
      ["req-1", [{ t: 1 }, { t: 2 }], 1],
      ["unknown", [{ t: 9 }], 1],
    ]);
    const got: unknown[] = [];
    for await (const item of sink) got.push(item);
    // a batch is read a chunk at a time
    expect(got).toEqual([{ t: 0 }, { t: 1 }, { t: 2 }]);
    expect(rx.size).toBe(0);
  });

  test("what is queued is there without a promise (readyNow), in order, then NOT_READY", async () => {
    const rx = new LaneReceiver(restore);
    const sink = rx.open("req-1", "node-a");
    const waiting = sink.next();
    rx.deliver("node-a", [["req-1", [{ t: 0 }, { t: 1 }, { t: 2 }], 0]]);
    // the reader that waited gets the batch's first chunk; the rest is ready now
    expect(await waiting).toEqual({ done: false, value: { t: 0 } });
    expect([sink.readyNow(), sink.readyNow(), sink.readyNow()]).toEqual([{ t: 1 }, { t: 2 }, NOT_READY]);
    rx.deliver("node-a", [["req-1", [{ t: 3 }], 1]]);
    expect(sink.readyNow()).toEqual({ t: 3 });
    expect(await sink.next()).toEqual({ done: true, value: undefined });
  });

  test("an error entry breaks the sink with the node's error", async () => {
    const rx = new LaneReceiver(restore);
    const sink = rx.open("r", "node-a");
    rx.deliver("node-a", [["r", [{ t: "before" }], { message: "boom", code: 503 }]]);
    // the chunks before the error first, then the error
    expect(await sink.next()).toEqual({ done: false, value: { t: "before" } });
    await expect(sink.next()).rejects.toMatchObject({ message: "boom", code: 503, nodeID: "node-a" });
  });

  test("a node writes only to its own streams; malformed messages are ignored", async () => {
    const rx = new LaneReceiver(restore);
    const sink = rx.open("r", "node-a");
    rx.deliver("node-b", [["r", [{ t: "forged" }], 1]]);
    rx.deliver("node-a", "nonsense" as unknown as LaneEntry[]);
    rx.deliver("node-a", [null as unknown as LaneEntry, ["r", [{ t: "ok" }], 1]]);
    const got: unknown[] = [];
    for await (const item of sink) got.push(item);
    expect(got).toEqual([{ t: "ok" }]);
  });

  test("a node that left breaks its open streams with a 502; others go on", async () => {
    const rx = new LaneReceiver(restore);
    const a = rx.open("ra", "node-a");
    const b = rx.open("rb", "node-b");
    rx.nodeLost("node-a");
    await expect(a.next()).rejects.toMatchObject({ code: 502, type: "node_lost" });
    expect(b.destroyed).toBe(false);
    expect(rx.size).toBe(1);
  });

  test("a sink broken before anyone reads it throws nothing; its reader still gets the error", async () => {
    const rx = new LaneReceiver(restore);
    const sink = rx.open("r", "node-a");
    rx.nodeLost("node-a");
    await new Promise((r) => setImmediate(r));
    const read = async () => {
      for await (const item of sink) void item;
    };
    await expect(read()).rejects.toMatchObject({ type: "node_lost" });
  });

  test("a reader waiting for the next chunk gets it as it comes; the end after it", async () => {
    const rx = new LaneReceiver(restore);
    const sink = rx.open("r", "node-a");
    const waiting = sink.next();
    rx.deliver("node-a", [["r", [{ t: 1 }], 0]]);
    expect(await waiting).toEqual({ done: false, value: { t: 1 } });
    const more = sink.next();
    rx.deliver("node-a", [["r", [], 1]]);
    expect(await more).toEqual({ done: true, value: undefined });
    expect(rx.size).toBe(0);
  });

  test("a reader that stops early (return) closes the sink: later entries are ignored", async () => {
    const rx = new LaneReceiver(restore);
    const sink = rx.open("r", "node-a");
    await sink.return();
    expect(sink.destroyed).toBe(true);
    expect(rx.size).toBe(0);
    rx.deliver("node-a", [["r", [{ t: 1 }], 1]]);
    expect(await sink.next()).toEqual({ done: true, value: undefined });
  });

  test("a dropped sink is forgotten, and later entries for it are ignored", () => {
    const rx = new LaneReceiver(restore);
    const s = rx.open("r", "node-a");
    rx.drop("r");
    expect(s.destroyed).toBe(true);
    expect(() => rx.deliver("node-a", [["r", [{ t: 1 }], 1]])).not.toThrow();
    expect(rx.size).toBe(0);
  });
});
