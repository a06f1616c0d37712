import { ServiceBroker, type Service } from "moleculer";
import { StopDuringStart } from "../../../../lib/cluster/stop-during-start";

function brokerWith(started: (this: Service) => Promise<void>, ...more: Array<(this: Service) => Promise<void>>) {
  const broker = new ServiceBroker({ logger: false, middlewares: [StopDuringStart] });
  broker.createService({ name: "slow", mixins: more.map((m) => ({ started: m })), started });
  return broker;
}

describe("a broker stopped while a service starts", () => {
  test("a start hook that fails because of the stop ends quietly, and the start resolves", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let closed = false;
    const broker = new ServiceBroker({ logger: false, middlewares: [StopDuringStart] });
    broker.createService({
      name: "db",
      async started() {
        await gate;
        if (closed) throw new TypeError("Cannot read properties of null (reading 'find')");
      },
      stopped() {
        closed = true;
      },
    });
    const starting = broker.start();
    // the start hook is waiting: the stop comes now and closes what it uses
    await new Promise((r) => setImmediate(r));
    const stopping = broker.stop();
    await new Promise<void>((r) => {
      const check = () => (closed ? r() : setImmediate(check));
      check();
    });
    release();
    await expect(starting).resolves.toBeUndefined();
    await stopping;
  });

  test("later start hooks do not run once the stop began", async () => {
    const ran: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const broker = brokerWith(
      async function () {
        ran.push("own");
      },
      async function () {
        ran.push("mixin");
        await gate;
      },
    );
    const starting = broker.start();
    await new Promise((r) => setImmediate(r));
    const stopping = broker.stop();
    await new Promise<void>((r) => {
      const check = () => ((broker as unknown as { stopping: boolean }).stopping ? r() : setImmediate(check));
      check();
    });
    release();
    await starting;
    await stopping;
    expect(ran).toEqual(["mixin"]);
  });

  test("a start that fails with no stop under way still fails", async () => {
    const broker = brokerWith(async () => {
      throw new Error("port in use");
    });
    await expect(broker.start()).rejects.toThrow("port in use");
    await broker.stop();
  });
});
