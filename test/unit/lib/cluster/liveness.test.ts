/**
 * The container health check: the beat file a running broker keeps fresh
 * (lib/cluster/liveness.ts) and `bin/healthcheck.ts`, run as the images run it.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import { ServiceBroker } from "moleculer";
import { waitFor } from "../../../helpers/wait";
import { brokerIsLive, checkBeat, localHealthUrl, startLiveness, writeBeat } from "../../../../lib/cluster/liveness";

const ROOT = path.join(__dirname, "../../../..");

function tmpFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), "liveness-")), "alive");
}

/** `node --import tsx bin/healthcheck.ts` with this environment: exit code and output. */
function runHealthcheck(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(
        ([k]) => !/^(SERVICES|LLM_HEALTH_FILE|LLM_ROUTER_PORT|LLM_ROUTER_HOST)$/.test(k),
      ),
    );
    const child = spawn(process.execPath, ["--import", "tsx", "bin/healthcheck.ts"], {
      cwd: ROOT,
      env: { ...clean, ...env },
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => resolve({ code, out }));
  });
}

describe("beat file", () => {
  test("fresh is healthy; missing, stale or garbage is not", () => {
    const file = tmpFile();
    expect(checkBeat(file).ok).toBe(false);
    expect(checkBeat(file).reason).toMatch(/no health file/);
    const now = Date.now();
    writeBeat(file, { ts: now - 5_000, nodeID: "n1", pid: 1, services: ["inference"] });
    expect(checkBeat(file, 30_000, now)).toEqual({ ok: true, reason: "node n1 beat 5 s ago" });
    expect(checkBeat(file, 30_000, now + 40_000)).toEqual({ ok: false, reason: "last beat 45 s ago (node n1)" });
    fs.writeFileSync(file, "{half");
    expect(checkBeat(file).ok).toBe(false);
    fs.writeFileSync(file, "{}");
    expect(checkBeat(file).reason).toMatch(/no timestamp/);
  });

  test("the api's own /health: loopback for a wildcard bind", () => {
    expect(localHealthUrl("0.0.0.0", 8080)).toBe("http://127.0.0.1:8080/health");
    expect(localHealthUrl("::", 8080)).toBe("http://127.0.0.1:8080/health");
    expect(localHealthUrl("10.1.2.3", 9000)).toBe("http://10.1.2.3:9000/health");
    expect(localHealthUrl("::1", 9000)).toBe("http://[::1]:9000/health");
    expect(localHealthUrl("0.0.0.0", 8080, true)).toBe("http://127.0.0.1:8080/health?ready=1");
  });

  test("a broker beats while it runs and is connected, and stops beating when it stops", async () => {
    const file = tmpFile();
    const broker = new ServiceBroker({ nodeID: "beat-test", transporter: "Fake", logger: false });
    expect(await brokerIsLive(broker)).toBe(false);
    await broker.start();
    expect(await brokerIsLive(broker)).toBe(true);
    let skipped = 0;
    const stop = startLiveness(broker, file, ["inference"], 50, (wrote) => (skipped = wrote ? 0 : skipped + 1));
    try {
      await waitFor(() => fs.existsSync(file), { timeoutMs: 2_000, what: "the first beat" });
      const first = JSON.parse(fs.readFileSync(file, "utf8")) as { ts: number; nodeID: string; services: string[] };
      expect(first).toMatchObject({ nodeID: "beat-test", services: ["inference"] });
      const beat = () => (JSON.parse(fs.readFileSync(file, "utf8")) as { ts: number }).ts;
      await waitFor(() => beat() > first.ts, { timeoutMs: 2_000, what: "a later beat" });

      await broker.stop(); // disconnects from the transporter: no more beats
      expect(await brokerIsLive(broker)).toBe(false);
      // once a tick has found the broker stopped, no later tick writes
      await waitFor(() => skipped >= 1, { timeoutMs: 2_000, what: "a tick after the stop" });
      const last = beat();
      await waitFor(() => skipped >= 4, { timeoutMs: 2_000, what: "four ticks after the stop" });
      expect(beat()).toBe(last);
      expect(checkBeat(file, 100).ok).toBe(false);
    } finally {
      stop();
      await broker.stop();
    }
    expect(fs.existsSync(file)).toBe(false);
  });

  test("an embedded broker (no transporter) is live once started", async () => {
    const broker = new ServiceBroker({ nodeID: "embedded", logger: false });
    await broker.start();
    try {
      expect(await brokerIsLive(broker)).toBe(true);
    } finally {
      await broker.stop();
    }
  });
});

describe("bin/healthcheck.ts", () => {
  test("an inference node: healthy with a fresh beat file, unhealthy with a stale one or none", async () => {
    const file = tmpFile();
    writeBeat(file, { ts: Date.now(), nodeID: "node-1", pid: 1, services: ["inference"] });
    const fresh = await runHealthcheck({ SERVICES: "inference", LLM_HEALTH_FILE: file });
    expect(fresh).toEqual({ code: 0, out: expect.stringMatching(/^healthy: node node-1 beat \d s ago/) });

    writeBeat(file, { ts: Date.now() - 60_000, nodeID: "node-1", pid: 1, services: ["inference"] });
    const stale = await runHealthcheck({ SERVICES: "inference", LLM_HEALTH_FILE: file });
    expect(stale).toEqual({ code: 1, out: expect.stringMatching(/^unhealthy: last beat 6\d s ago/) });

    const none = await runHealthcheck({ SERVICES: "inference" });
    expect(none).toEqual({ code: 1, out: expect.stringMatching(/^unhealthy: nothing to check/) });
  });

  test("a router: GET /health?ready=1 on its port must answer 2xx, and the beat file must be fresh too", async () => {
    let status = 200;
    const server = http.createServer((req, res) => {
      // the readiness form: plain /health answers 200 while the router starts
      res.statusCode = req.url === "/health?ready=1" ? status : 404;
      res.end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = String((server.address() as AddressInfo).port);
    const file = tmpFile();
    try {
      const ok = await runHealthcheck({ SERVICES: "router", LLM_ROUTER_PORT: port });
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(/^healthy: http:\/\/127\.0\.0\.1:\d+\/health\?ready=1: 200/);

      // HTTP answers, but the broker has not beaten (e.g. lost NATS): unhealthy
      const noBeat = await runHealthcheck({ SERVICES: "router", LLM_ROUTER_PORT: port, LLM_HEALTH_FILE: file });
      expect(noBeat.code).toBe(1);

      status = 503;
      writeBeat(file, { ts: Date.now(), nodeID: "router-1", pid: 1, services: ["api"] });
      const failing = await runHealthcheck({ SERVICES: "router", LLM_ROUTER_PORT: port, LLM_HEALTH_FILE: file });
      expect(failing.code).toBe(1);
      expect(failing.out).toMatch(/503/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
