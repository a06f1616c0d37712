/**
 * lib/core/router-core.ts: one core per broker, shared by the router's
 * services of that process; which services need each other there; and the
 * failures the api used to swallow.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker, type Service } from "moleculer";
import { routerCore, unmetPartners } from "../../../../lib/core/router-core";
import { simHeartbeat, SIM_MODEL } from "../../../../bench/sim-nodes";
import BalancerService from "../../../../services/balancer.service";
import { cancelOnNode } from "../../../../lib/upstreams/node";

/** A broker whose warnings the test reads. */
function brokerWithLog(nodeID: string): { broker: ServiceBroker; warnings: string[] } {
  const warnings: string[] = [];
  const broker = new ServiceBroker({
    nodeID,
    transporter: null,
    logger: {
      type: "Console",
      options: { level: "warn" },
    },
  });
  const orig = broker.getLogger.bind(broker);
  broker.getLogger = (mod, props) => {
    const l = orig(mod, props) as ReturnType<ServiceBroker["getLogger"]>;
    return { ...l, warn: (...args: unknown[]) => void warnings.push(args.map(String).join(" ")) } as ReturnType<
      ServiceBroker["getLogger"]
    >;
  };
  return { broker, warnings };
}

const RegistryStandIn = {
  name: "registry",
  created(this: Service) {
    routerCore(this.broker).registry = true;
  },
};

describe("the router's core", () => {
  test("is one object per broker", () => {
    const a = new ServiceBroker({ logger: false });
    const b = new ServiceBroker({ logger: false });
    expect(routerCore(a)).toBe(routerCore(a));
    expect(routerCore(a)).not.toBe(routerCore(b));
  });

  test("the balancer service sets up the core's balancer over the core's node table", async () => {
    const broker = new ServiceBroker({ logger: false, transporter: null });
    // simulated nodes: no inference endpoint to ask whether they can be reached
    routerCore(broker, { reachable: () => true }).table.upsert(simHeartbeat("node-1", 0, 0));
    broker.createService(RegistryStandIn);
    broker.createService(BalancerService);
    await broker.start();
    try {
      const balancer = routerCore(broker).balancer!;
      const picked = await balancer.select({ model: SIM_MODEL });
      expect(picked.nodeID).toBe("node-1");
      expect(balancer.stats().inflight).toEqual({ "node-1": 1 });
      balancer.finished({ nodeID: "node-1", outcome: "ok" });
      expect(balancer.stats().inflight).toEqual({});
      // the action answers from the same balancer
      expect(await broker.call("balancer.stats")).toMatchObject({ inflight: {}, queued: 0 });
    } finally {
      await broker.stop();
    }
    expect(routerCore(broker).balancer).toBeNull();
  });

  test("a balancer without a registry in its process refuses to start", async () => {
    const broker = new ServiceBroker({ logger: false, transporter: null });
    broker.createService(BalancerService);
    await expect(broker.start()).rejects.toThrow(/registry service in the same process/);
  });

  test("services that share the core must run together", () => {
    expect(unmetPartners(["api", "registry", "balancer"])).toBeNull();
    expect(unmetPartners(["inference"])).toBeNull();
    expect(unmetPartners(["api", "registry"])).toMatch(/add balancer/);
    expect(unmetPartners(["api", "balancer"])).toMatch(/add registry/);
    expect(unmetPartners(["models", "auth"])).toMatch(/add registry/);
  });
});

describe("failures that are logged, not swallowed", () => {
  test("a cancel that cannot reach its node says so", async () => {
    const { broker, warnings } = brokerWithLog("router-a");
    await broker.start();
    try {
      const ctx = broker.ContextFactory.create(broker);
      await cancelOnNode(ctx, "gone-node", "chatcmpl-1", broker.getLogger("api"));
      expect(warnings.join("\n")).toMatch(/could not cancel chatcmpl-1 on node gone-node/);
    } finally {
      await broker.stop();
    }
  });

  test("a logout that cannot be sent to the other routers says so", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "core-auth-"));
    const saved = { ...process.env };
    process.env.LLM_ROUTER_DATA_DIR = dataDir;
    process.env.LLM_ROUTER_ADMIN_PASSWORD = "a-long-enough-password";
    const { broker, warnings } = brokerWithLog("router-b");
    try {
      // required here so that it reads the environment set above
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const AuthService = require("../../../../services/auth.service").default;
      broker.createService(AuthService);
      await broker.start();
      // the transporter fails to publish (NATS gone): the logout holds here and is logged
      jest.spyOn(broker, "broadcast").mockRejectedValue(new Error("transporter down"));
      const r = await broker.call("auth.logout", { jti: "j1", exp: Math.floor(Date.now() / 1000) + 60 });
      expect(r).toEqual({ logged_out: true });
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.join("\n")).toMatch(/logout could not be sent to the other routers.*transporter down/);
    } finally {
      await broker.stop();
      process.env = saved;
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
