import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { dashboardFile } from "../../../services/api/dashboard-static";
import { LiveHub } from "../../../lib/http/live-hub";
import { MetricHistory, type MetricSample } from "../../../lib/cluster/metric-history";

describe("dashboard files", () => {
  test("index, pages and vendor builds resolve; nothing outside public/ or hidden does", () => {
    expect(dashboardFile("")).toMatch(/public\/index\.html$/);
    expect(dashboardFile("js/app.js")).toMatch(/public\/js\/app\.js$/);
    expect(dashboardFile("vendor/chart.umd.min.js")).toMatch(/chart\.js\/dist\/chart\.umd\.min\.js$/);
    expect(dashboardFile("vendor/eventsource-parser.js")).toMatch(/eventsource-parser\/dist\/index\.js$/);
    for (const bad of [
      "../package.json",
      "js/../../package.json",
      "/etc/passwd",
      ".env",
      "js/.hidden.js",
      "vendor/../../package.json",
      "vendor/chart.js",
      "README.md",
      "js//app.js",
    ]) {
      expect(dashboardFile(bad)).toBeNull();
    }
  });
});

function fakeResponse() {
  const res = new EventEmitter() as EventEmitter & { frames: string[]; ended: boolean };
  res.frames = [];
  res.ended = false;
  Object.assign(res, {
    writeHead: () => res,
    write: (s: string) => res.frames.push(s),
    end: () => {
      res.ended = true;
    },
  });
  return res;
}

describe("LiveHub", () => {
  test("sends to every client; a coalesced signal sends once per interval", async () => {
    jest.useFakeTimers();
    const hub = new LiveHub();
    const [a, b] = [fakeResponse(), fakeResponse()];
    hub.add(a as unknown as ServerResponse);
    hub.add(b as unknown as ServerResponse);
    hub.send("request", { id: "r1" });
    expect(a.frames.at(-1)).toBe('event: request\ndata: {"id":"r1"}\n\n');
    let produced = 0;
    for (let i = 0; i < 50; i++) hub.signal("nodes", 2000, () => ++produced);
    await jest.advanceTimersByTimeAsync(2000);
    expect(produced).toBe(1);
    expect(b.frames.filter((f) => f.startsWith("event: nodes")).length).toBe(1);
    // a client that left gets nothing more
    b.emit("close");
    hub.send("request", { id: "r2" });
    expect(b.frames.some((f) => f.includes("r2"))).toBe(false);
    expect(hub.size).toBe(1);
    hub.close();
    expect(a.ended).toBe(true);
    jest.useRealTimers();
  });

  test("without clients a signal does no work", async () => {
    jest.useFakeTimers();
    const hub = new LiveHub();
    const produce = jest.fn();
    hub.signal("nodes", 10, produce);
    await jest.advanceTimersByTimeAsync(20);
    expect(produce).not.toHaveBeenCalled();
    hub.close();
    jest.useRealTimers();
  });
});

describe("MetricHistory", () => {
  const sample = (ts: number, cpu = 1): MetricSample => ({
    ts,
    cpu,
    memory: 0,
    gpu: null,
    vram_used_bytes: null,
    vram_total_bytes: null,
    active: 0,
    capacity: 1,
    tokens_per_second: 0,
  });

  test("keeps one sample per gap, drops those older than the window, forgets removed nodes", () => {
    const h = new MetricHistory(10_000, 2_000);
    h.add("n", sample(0));
    h.add("n", sample(1_000)); // within the gap: skipped
    h.add("n", sample(2_000));
    h.add("n", sample(11_000));
    expect(h.of("n").map((s) => s.ts)).toEqual([2_000, 11_000]);
    h.remove("n");
    expect(h.of("n")).toEqual([]);
  });
});
