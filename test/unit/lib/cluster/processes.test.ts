/**
 * The pieces of a router on several processes (LLM_ROUTER_PROCESSES): the
 * IPC transporter and its relay (real brokers, the IPC channel in memory),
 * the gateway's key cache, the batcher, /metrics labelled by process, and
 * what each worker is started with.
 */
import { EventEmitter } from "node:events";
import { ServiceBroker } from "moleculer";
import { workerSetup } from "../../../../bin/processes";
import { KeyCache } from "../../../../lib/auth/key-cache";
import type { KeyIdentity } from "../../../../lib/auth/keys";
import { Batcher } from "../../../../lib/cluster/batcher";
import { IpcRelay, IpcTransporter, type IpcChannel, type IpcMessage } from "../../../../lib/cluster/ipc-transporter";
import { labelByProcess, type MetricObject } from "../../../../lib/metrics/merge";
import { M } from "../../../../lib/metrics/router-metrics";

/** A worker's IPC channel, in memory: what it sends reaches the relay a turn later, as over a pipe. */
class Channel extends EventEmitter implements IpcChannel {
  constructor(
    private readonly relay: IpcRelay,
    readonly id: number,
  ) {
    super();
    relay.add({ id, send: (m) => setImmediate(() => this.emit("message", structuredClone(m))) });
  }

  send(message: IpcMessage): boolean {
    setImmediate(() => this.relay.handle(this.id, structuredClone(message)));
    return true;
  }
}

describe("IPC transporter between router processes", () => {
  const relay = new IpcRelay();
  const brokers: ServiceBroker[] = [];
  const broker = (nodeID: string, id: number) => {
    const b = new ServiceBroker({
      nodeID,
      namespace: "ipc-test",
      logger: false,
      transporter: new IpcTransporter(new Channel(relay, id)),
      heartbeatInterval: 1,
    });
    brokers.push(b);
    return b;
  };

  afterAll(() => Promise.all(brokers.map((b) => b.stop())));

  test("brokers on it find each other, call actions and get events; one that leaves is forgotten", async () => {
    const a = broker("proc-0", 1);
    const b = broker("proc-1", 2);
    const seen: unknown[] = [];
    a.createService({
      name: "keys",
      actions: { verify: (ctx) => ({ ok: (ctx.params as { key: string }).key === "sk-1", by: a.nodeID }) },
      events: { "history.records": (ctx) => void seen.push(ctx.params) },
    });
    await Promise.all([a.start(), b.start()]);
    await b.waitForServices(["keys"], 5000);
    expect(await b.call("keys.verify", { key: "sk-1" })).toEqual({ ok: true, by: "proc-0" });
    await b.emit("history.records", { records: [1, 2] });
    await new Promise<void>((resolve) => {
      const check = () => (seen.length ? resolve() : setImmediate(check));
      check();
    });
    expect(seen).toEqual([{ records: [1, 2] }]);
    const gone = new Promise<void>((resolve) => a.localBus.once("$node.disconnected", () => resolve()));
    await b.stop();
    await gone;
    expect(a.registry.nodes.get("proc-1")?.available).toBe(false);
  });

  test("outside a forked process it refuses to connect", async () => {
    const t = new IpcTransporter({ on: () => undefined, off: () => undefined });
    await expect(t.connect()).rejects.toThrow(/forked worker/);
  });

  test("the relay passes a packet only to the processes subscribed to its topic", () => {
    const r = new IpcRelay();
    const got: Array<[number, IpcMessage]> = [];
    for (const id of [1, 2, 3]) r.add({ id, send: (m) => got.push([id, m]) });
    r.handle(1, { llmRouterIpc: "sub", topic: "MOL.REQ.a" });
    r.handle(2, { llmRouterIpc: "sub", topic: "MOL.EVENT" });
    r.handle(3, { llmRouterIpc: "sub", topic: "MOL.EVENT" });
    const data = new Uint8Array([1, 2]);
    r.handle(2, { llmRouterIpc: "pub", topic: "MOL.REQ.a", data });
    r.handle(1, { llmRouterIpc: "pub", topic: "MOL.EVENT", data });
    expect(got.map(([id, m]) => [id, m.llmRouterIpc === "msg" && m.topic])).toEqual([
      [1, "MOL.REQ.a"],
      [2, "MOL.EVENT"],
      [3, "MOL.EVENT"],
    ]);
    r.remove(3);
    got.length = 0;
    r.handle(1, { llmRouterIpc: "pub", topic: "MOL.EVENT", data });
    expect(got.map(([id]) => id)).toEqual([2]);
    expect(r.handle(1, { something: "else" })).toBe(false);
  });
});

describe("a gateway's key cache", () => {
  const key = (over: Partial<KeyIdentity> = {}): KeyIdentity => ({
    id: "k1",
    name: "k",
    owner: "admin",
    allowedModels: null,
    rateLimitRpm: null,
    expiresAt: null,
    ...over,
  });
  const secret = `sk-${"a".repeat(43)}`;

  test("keeps a confirmed key for its time to live, found by the secret but stored under its hash", () => {
    let now = 1_000;
    const cache = new KeyCache(10_000, 100, () => now);
    cache.set(secret, key());
    expect(cache.get(secret)?.id).toBe("k1");
    expect(JSON.stringify([...(cache as unknown as { entries: Map<string, unknown> }).entries])).not.toContain(secret);
    now += 10_001;
    expect(cache.get(secret)).toBeUndefined();
  });

  test("never past the key's own expiry; keys with a rate limit are not kept", () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const cache = new KeyCache(60_000, 100, () => now);
    cache.set(secret, key({ expiresAt: "2026-01-01T00:00:05Z" }));
    now += 5_000;
    expect(cache.get(secret)).toBeUndefined();
    cache.set(secret, key({ rateLimitRpm: 10 }));
    expect(cache.get(secret)).toBeUndefined();
    cache.set(secret, key({ expiresAt: "2025-01-01T00:00:00Z" }));
    expect(cache.size).toBe(0);
  });

  test("an answer asked for before a change is not kept after it", () => {
    const cache = new KeyCache(10_000);
    const asked = cache.generation;
    cache.clear(); // a key was revoked while the answer travelled
    cache.set(secret, key(), asked);
    expect(cache.get(secret)).toBeUndefined();
    cache.set(secret, key(), cache.generation);
    expect(cache.get(secret)?.id).toBe("k1");
  });
});

describe("Batcher", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test("sends at `max` items at once, else `delayMs` after the first; flush sends what waits", () => {
    const sent: number[][] = [];
    const b = new Batcher<number>((items) => sent.push(items), 50, 3);
    [1, 2, 3, 4].forEach((n) => b.push(n));
    expect(sent).toEqual([[1, 2, 3]]);
    jest.advanceTimersByTime(49);
    expect(sent).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(sent).toEqual([[1, 2, 3], [4]]);
    b.push(5);
    b.flush();
    b.flush();
    expect(sent).toEqual([[1, 2, 3], [4], [5]]);
    expect(b.size).toBe(0);
  });
});

describe("/metrics of several processes", () => {
  const counter = (n: number): MetricObject => ({
    type: "counter",
    name: M.requests,
    labelNames: ["model"],
    values: [{ labels: { model: "m" }, value: n }],
  });
  const gauge = (n: number): MetricObject => ({
    type: "gauge",
    name: M.nodeUp,
    labelNames: ["node"],
    values: [{ labels: { node: "n1" }, value: n }],
  });

  test("each process's series gets its router_process; cluster-wide gauges come once, from the process scraped", () => {
    const store = labelByProcess([
      { process: "1", metrics: [counter(3), gauge(1)] },
      { process: "0", metrics: [counter(5), gauge(0)] },
    ]);
    const requests = store.find((m) => m.name === M.requests)!;
    expect(requests.labelNames).toEqual(["model", "router_process"]);
    expect(requests.snapshot()).toEqual([
      { labels: { model: "m", router_process: "1" }, value: 3 },
      { labels: { model: "m", router_process: "0" }, value: 5 },
    ]);
    const up = store.find((m) => m.name === M.nodeUp)!;
    expect(up.labelNames).toEqual(["node"]);
    expect(up.snapshot()).toEqual([{ labels: { node: "n1" }, value: 1 }]);
  });
});

describe("what each router process is started with", () => {
  test("process 0 hosts SERVICES as set; the others are gateways with node IDs of their own", () => {
    expect(workerSetup(0, { NODEID: "r" })).toEqual({ args: ["start", "--worker", "0"], env: {} });
    expect(workerSetup(2, { NODEID: "r" })).toEqual({
      args: ["start", "--worker", "2"],
      env: { SERVICES: "gateway", NODEID: "r-2" },
    });
    expect(workerSetup(1, {}).env).toEqual({ SERVICES: "gateway" });
  });
});
