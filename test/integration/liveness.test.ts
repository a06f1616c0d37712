/**
 * The health beat against a real nats-server: a node whose NATS goes away
 * stops beating (Moleculer's NATS client reconnects forever and keeps calling
 * itself connected, so the beat needs a round trip), and beats again once NATS
 * is back. And `llm-router start` writes the beat file of LLM_HEALTH_FILE.
 */
import fs from "node:fs";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { checkBeat, startLiveness } from "../../lib/cluster/liveness";
import { transporter } from "../../moleculer.config";
import { freePort, startCli, startNats, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const ts = (file: string) => (JSON.parse(fs.readFileSync(file, "utf8")) as { ts: number }).ts;

/**
 * Stops a broker on NATS, its NATS server there or not. Moleculer's transporter
 * closes its NATS client after a flush, which fails while the server is away:
 * the client is left open, reconnecting forever, and jest would never exit
 * after a test that failed with NATS down. Closed here whatever happened.
 */
async function stopBroker(broker: ServiceBroker): Promise<void> {
  await broker.stop();
  const tx = broker.transit?.tx as unknown as { client: { close(): Promise<void> } | null } | undefined;
  await tx?.client?.close();
}

describe("health beat over NATS", () => {
  const procs: Proc[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.stop("SIGKILL");
  });

  test("stops while NATS is down and resumes when it is back", async () => {
    const port = await freePort();
    let nats = await startNats(port);
    procs.push(nats.proc);
    const file = path.join(tempDir("beat"), "alive");
    const broker = new ServiceBroker({ nodeID: "beat-nats", transporter: transporter(nats.url), logger: false });
    await broker.start();
    // ticks in a row that wrote nothing
    let skipped = 0;
    const stop = startLiveness(broker, file, ["inference"], 100, (wrote) => (skipped = wrote ? 0 : skipped + 1));
    try {
      await waitFor(() => fs.existsSync(file) && checkBeat(file, 500).ok, { what: "a fresh beat" });

      await nats.proc.stop("SIGKILL");
      // once a tick has found NATS gone, the file stays as it is for the ticks after it
      await waitFor(() => skipped >= 1, { what: "a tick without NATS" });
      const last = ts(file);
      await waitFor(() => skipped >= 5, { what: "five ticks without NATS" });
      // a tick's round trip may take most of its interval, so five ticks can end a little under 500 ms
      // after the last write: wait until that write is older than the limit checked below
      await waitFor(() => Date.now() - last > 600, { what: "the last beat older than 600 ms" });
      expect(ts(file)).toBe(last);
      expect(checkBeat(file, 500).ok).toBe(false);

      nats = await startNats(port);
      procs.push(nats.proc);
      await waitFor(() => ts(file) > last && checkBeat(file, 500).ok, { timeoutMs: 20_000, what: "beats again" });
    } finally {
      stop();
      await stopBroker(broker);
    }
  });

  test("`llm-router start` keeps LLM_HEALTH_FILE fresh, and healthcheck says so", async () => {
    const nats = await startNats();
    procs.push(nats.proc);
    const dir = tempDir("beat-node");
    const file = path.join(dir, "alive");
    const env = {
      SERVICES: "inference",
      TRANSPORTER: nats.url,
      NODEID: "beat-node",
      LLM_NODE_ENGINE: "instant",
      LLM_NODE_MODELS_DIR: path.join(dir, "models"),
      LLM_HEALTH_FILE: file,
    };
    const node = startCli("node", env);
    procs.push(node);
    await waitFor(() => fs.existsSync(file), { timeoutMs: 30_000, what: "the beat file" }).catch((err: Error) => {
      throw new Error(`${err.message}\n${node.output.slice(-2000)}`);
    });
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toMatchObject({ nodeID: "beat-node", services: ["inference"] });
    const check = startCli("healthcheck", env, ["healthcheck"]);
    expect(await check.exited).toBe(0);
    expect(check.output).toMatch(/^healthy: node beat-node beat \d s ago/);
  });
});
