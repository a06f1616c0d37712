/**
 * The api's port when a stop comes while the services start (SIGTERM during
 * start): the real api service in a local broker, beside a service that takes
 * its time to start, as history does with a large store.
 */
import type { Server } from "node:http";
import { ServiceBroker, type Service, type ServiceSchema } from "moleculer";
import ApiService from "../../../services/api.service";
import { waitFor } from "../../helpers/wait";

type Api = Service & { server: Server; drain(timeoutMs: number): Promise<void>; stopAccepting(): void };

function brokerWithSlowHistory(nodeID: string) {
  let loaded!: () => void;
  const loading = new Promise<void>((resolve) => (loaded = resolve));
  // what a service's event handler throws, Moleculer hands to this
  const errors: Error[] = [];
  const broker = new ServiceBroker({ nodeID, logger: false, errorHandler: (err: Error) => void errors.push(err) });
  const api = broker.createService({
    name: "api",
    mixins: [ApiService as unknown as ServiceSchema],
    settings: { port: 0, ip: "127.0.0.1" },
  }) as unknown as Api;
  broker.createService({ name: "history", started: () => loading });
  return { broker, api, loaded, errors };
}

describe("the api stopped while the services start", () => {
  test("drained before the others have started: the late `$broker.started` announces nothing and throws nothing", async () => {
    const { broker, api, loaded, errors } = brokerWithSlowHistory("api-stop-1");
    const starting = broker.start();
    await waitFor(() => api.server.listening, { what: "the api's port open" });
    await api.drain(1000); // what SIGTERM does first
    expect(api.server.listening).toBe(false);
    loaded();
    await starting;
    // the broker's own `$broker.started` went out as the start ended; this one is awaited
    await broker.broadcastLocal("$broker.started");
    expect(errors).toEqual([]);
    await broker.stop();
  });

  test("told to stop accepting before moleculer-web opened the port: it closes it once it opens", async () => {
    const { broker, api, loaded, errors } = brokerWithSlowHistory("api-stop-2");
    api.stopAccepting();
    loaded();
    await broker.start();
    await waitFor(() => !api.server.listening, { what: "the port closed again" });
    await broker.broadcastLocal("$broker.started");
    expect(errors).toEqual([]);
    await broker.stop();
  });
});
