/**
 * `/health`'s readiness (lib/cluster/readiness.ts): the decision on its own,
 * and gathered from a real broker whose services start one after another.
 */
import { ServiceBroker, type Context } from "moleculer";
import {
  FIRST_PROCESS,
  healthHttpStatus,
  readiness,
  readinessOf,
  wantsReadiness,
  type InferenceNodeState,
  type ReadinessInput,
} from "../../../../lib/cluster/readiness";
import { waitFor } from "../../../helpers/wait";

const started = (...names: string[]) => names.map((name) => ({ name, started: true }));
const base = (over: Partial<ReadinessInput> = {}): ReadinessInput => ({
  services: started("api", "registry", "history"),
  inferenceNodes: [],
  stopping: false,
  wasReady: false,
  ...over,
});
const node = (status: InferenceNodeState["status"], reachable = true): InferenceNodeState => ({
  id: "n1",
  status,
  reachable,
});

describe("readiness: the decision", () => {
  test("ok when every service has started and there is no inference node to wait for", () => {
    expect(readiness(base())).toEqual({ status: "ok", waiting_for: [] });
  });

  test("starting, with every service that has not started, in order; Moleculer's own are left out", () => {
    const services = [
      { name: "$node", started: false },
      { name: "api", started: true },
      { name: "history", started: false },
      { name: "auth", started: false },
    ];
    expect(readiness(base({ services }))).toEqual({ status: "starting", waiting_for: ["history", "auth"] });
  });

  test("the embedded node: not before it is online and reachable; its service and its state count once", () => {
    for (const n of [node("unknown", false), node("initializing"), node("online", false), node("offline")]) {
      expect(readiness(base({ inferenceNodes: [n] }))).toEqual({ status: "starting", waiting_for: ["inference"] });
    }
    const loading = base({
      services: [...started("api"), { name: "inference", started: false }],
      inferenceNodes: [node("unknown", false)],
    });
    expect(readiness(loading).waiting_for).toEqual(["inference"]);
    expect(readiness(base({ inferenceNodes: [node("online")] }))).toEqual({ status: "ok", waiting_for: [] });
  });

  test("a router process other than 0 waits for process 0 to be ok", () => {
    for (const first of ["starting", "unknown", "degraded", "stopping"] as const) {
      expect(readiness(base({ firstProcess: first }))).toEqual({ status: "starting", waiting_for: [FIRST_PROCESS] });
    }
    expect(readiness(base({ firstProcess: "ok" })).status).toBe("ok");
  });

  test("degraded once it was ready; stopping while it drains, whatever else it waits for", () => {
    expect(readiness(base({ wasReady: true, inferenceNodes: [node("offline")] }))).toEqual({
      status: "degraded",
      waiting_for: ["inference"],
    });
    expect(readiness(base({ stopping: true }))).toEqual({ status: "stopping", waiting_for: [] });
    expect(readiness(base({ stopping: true, inferenceNodes: [node("offline")] })).status).toBe("stopping");
  });

  test("only a readiness probe gets a 503, and only when not ok", () => {
    const ok = readiness(base());
    const starting = readiness(base({ inferenceNodes: [node("initializing")] }));
    expect(healthHttpStatus(ok, true)).toBe(200);
    expect(healthHttpStatus(starting, true)).toBe(503);
    expect(healthHttpStatus(starting, false)).toBe(200);
    expect(healthHttpStatus(readiness(base({ stopping: true })), true)).toBe(503);
  });

  test("?ready, ?ready=1, ?ready=true ask for readiness; absent, 0 or false do not", () => {
    for (const v of ["", "1", "true", "yes", "TRUE", ["0", "1"]]) expect(wantsReadiness(v)).toBe(true);
    for (const v of [undefined, null, "0", "false", "no", "off", " False "]) expect(wantsReadiness(v)).toBe(false);
  });
});

describe("readinessOf: a real broker whose services start one after another", () => {
  const gates: Record<string, () => void> = {};
  const gate = (name: string) => new Promise<void>((resolve) => (gates[name] = resolve));
  const states = new Map<string, Omit<InferenceNodeState, "id">>();
  const broker = new ServiceBroker({ nodeID: "ready-test", logger: false });
  broker.createService({ name: "api" });
  broker.createService({
    name: "registry",
    actions: {
      nodeState: (ctx: Context<{ id: string }>) => states.get(ctx.params.id) ?? { status: "unknown", reachable: false },
    },
  });
  broker.createService({ name: "history", started: () => gate("history") });
  broker.createService({ name: "inference", started: () => gate("inference") });
  let starting: Promise<void>;

  beforeAll(async () => {
    starting = broker.start();
    await waitFor(() => gates.history && gates.inference && broker.registry.hasService("registry", broker.nodeID), {
      what: "the quick services started",
    });
  });
  afterAll(async () => {
    gates.history?.();
    gates.inference?.();
    await starting;
    await broker.stop();
  });

  test("starting until history has loaded and the node is online and reachable; then ok, degraded, stopping", async () => {
    expect(await readinessOf(broker, false)).toEqual({ status: "starting", waiting_for: ["history", "inference"] });

    gates.history();
    await waitFor(() => broker.registry.hasService("history", broker.nodeID), { what: "history started" });
    expect(await readinessOf(broker, false)).toEqual({ status: "starting", waiting_for: ["inference"] });

    // its models are loaded and the registry has its heartbeat, but the service is not registered yet
    states.set(broker.nodeID, { status: "online", reachable: false });
    gates.inference();
    await starting;
    expect(await readinessOf(broker, false)).toEqual({ status: "starting", waiting_for: ["inference"] });

    states.set(broker.nodeID, { status: "online", reachable: true });
    expect(await readinessOf(broker, false)).toEqual({ status: "ok", waiting_for: [] });

    states.set(broker.nodeID, { status: "offline", reachable: true });
    expect(await readinessOf(broker, false)).toEqual({ status: "degraded", waiting_for: ["inference"] });
    expect((await readinessOf(broker, true)).status).toBe("stopping");
  });
});
