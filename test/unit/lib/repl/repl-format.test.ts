/** lib/repl: the ops console's text, from the JSON the cluster's actions answer. */
import {
  formatHistory,
  formatModels,
  formatNodes,
  formatRoute,
  table,
  type NodeRow,
} from "../../../../lib/repl/format";
import { maskUrl, redact } from "../../../../lib/repl/redact";
import type { RouteExplanation } from "../../../../lib/routing/explain";

const GIB = 1024 ** 3;

function row(over: Partial<NodeRow> = {}): NodeRow {
  return {
    id: "gpu-1",
    display_name: "box one",
    status: "online",
    draining: false,
    models: ["llama", "qwen"],
    active_requests: 1,
    queued_requests: 1,
    capacity: 4,
    cpu_usage: 12.4,
    tokens_per_second: 41.26,
    gpus: [
      { utilization: 50, vram_used_bytes: 2 * GIB, vram_total_bytes: 8 * GIB },
      { utilization: 70, vram_used_bytes: 1 * GIB, vram_total_bytes: 8 * GIB },
    ],
    ...over,
  };
}

test("table: aligned columns under a rule, no trailing spaces", () => {
  expect(table(["A", "LONG"], [["xyz", "1"]])).toBe("A    LONG\n---  ----\nxyz  1");
});

test("nodes: id, name, status, models, active, capacity, cpu, gpu, vram, tokens/s", () => {
  const out = formatNodes([row(), row({ id: "cpu-2", display_name: "cpu", draining: true, gpus: [], models: [] })]);
  const lines = out.split("\n");
  expect(lines[0].split(/\s+/)).toEqual([
    "NODE",
    "NAME",
    "STATUS",
    "MODELS",
    "ACTIVE",
    "CAPACITY",
    "CPU",
    "GPU",
    "VRAM",
    "TOKENS/S",
  ]);
  expect(lines[2].split(/\s{2,}/)).toEqual([
    "gpu-1",
    "box one",
    "online",
    "llama,qwen",
    "2",
    "4",
    "12%",
    "60%",
    "3.0/16.0G",
    "41.3",
  ]);
  expect(lines[3].split(/\s{2,}/)).toEqual([
    "cpu-2",
    "cpu",
    "online, draining",
    "-",
    "2",
    "4",
    "12%",
    "-",
    "-",
    "41.3",
  ]);
  expect(formatNodes([])).toMatch(/No inference nodes/);
  // a GPU without utilisation telemetry
  expect(formatNodes([row({ gpus: [{ utilization: null, vram_used_bytes: 0, vram_total_bytes: 0 }] })])).toMatch(
    /online\s+llama,qwen\s+2\s+4\s+12%\s+-\s+-\s+41\.3/,
  );
});

test("route: rule, decision, each candidate with its score and factors, and the filtered nodes", () => {
  const ex: RouteExplanation = {
    router: "router-1",
    model: "llama",
    strategy: "auto",
    rule: "the lowest load score",
    picked: "b",
    verdict: "send to b",
    queued: 0,
    candidates: [
      {
        nodeID: "a",
        machineName: "m-a",
        score: 0.7251,
        factors: { free_slots: 0, service_ms: null, considered: false },
        active: 2,
        capacity: 2,
        seen: false,
        chosen: false,
        note: "benched, but no other node is left",
      },
      {
        nodeID: "b",
        machineName: "m-b",
        score: 0,
        factors: { free_slots: 2, busy_ratio: 0.5 },
        active: 1,
        capacity: 2,
        seen: true,
        chosen: true,
        note: null,
      },
    ],
    filtered: [{ nodeID: "c", reason: "draining" }],
  };
  expect(formatRoute(ex)).toBe(
    [
      "model llama via router router-1, strategy auto",
      "rule: the lowest load score",
      "decision: send to b",
      "candidates:",
      "  a (m-a) score=0.725 slots=2/2 (not considered) [benched, but no other node is left]",
      "    free_slots=0 service_ms=- considered=false",
      "* b (m-b) score=0 slots=1/2",
      "    free_slots=2 busy_ratio=0.5",
      "filtered out:",
      "  c: draining",
    ].join("\n"),
  );
  expect(formatRoute({ ...ex, queued: 3, candidates: [], filtered: [] })).toContain(
    "queued at this router for the model: 3",
  );
});

test("history: one line per request, oldest first, errors with their message", () => {
  const rec = {
    started_at: "2025-01-02T03:04:05.678Z",
    model: "llama",
    node_id: "gpu-1",
    status: 200,
    duration_ms: 812.6,
    tokens_in: 12,
    tokens_out: 40,
    error: null,
  };
  const failed = {
    ...rec,
    started_at: "2025-01-02T03:04:09.000Z",
    status: 503,
    node_id: null,
    tokens_out: null,
    error: "No node",
  };
  expect(formatHistory([failed, rec]).split("\n")).toEqual([
    "2025-01-02 03:04:05Z  llama  gpu-1  200  813 ms  12→40 tok",
    "2025-01-02 03:04:09Z  llama  -  503  813 ms  12→- tok  No node",
  ]);
  expect(formatHistory([])).toBe("No requests recorded.");
});

test("models: served models with their nodes, and the catalog or its absence", () => {
  const out = formatModels(
    [
      { id: "llama", nodes: ["gpu-1", "gpu-2"], status: "loaded", available_on: [] },
      { id: "qwen", nodes: [], status: "available", available_on: ["gpu-2"] },
    ],
    [{ id: "org/repo/model.gguf", source: "hub", size: 5 * 1024 ** 2, nodes: ["gpu-1"] }],
  );
  expect(out).toMatch(
    /MODEL\s+STATUS\s+LOADED ON\s+AVAILABLE ON\n[- ]+\nllama\s+loaded\s+gpu-1, gpu-2\s+-\nqwen\s+available\s+-\s+gpu-2/,
  );
  expect(out).toMatch(/Catalog:\nID\s+SOURCE\s+SIZE\s+ON NODES\n.*\norg\/repo\/model\.gguf\s+hub\s+5\.0 MiB\s+gpu-1/);
  expect(formatModels([], null)).toMatch(/no model is served[\s\S]*no models service in the cluster/);
  expect(formatModels([], [])).toMatch(/Catalog:\n\s+\(empty\)/);
});

test("redact: URL credentials and secret-named fields, nothing else", () => {
  expect(maskUrl("nats://ops:pw@host:4222")).toBe("nats://***@host:4222");
  expect(maskUrl("nats://host:4222")).toBe("nats://host:4222");
  const fn = () => 1;
  expect(
    redact({
      type: "NATS",
      options: { url: "tls://u:p@h:1", user: "ops", pass: "pw", token: "t", nested: [{ password: "x" }], check: fn },
      maxQueueSize: 5,
    }),
  ).toEqual({
    type: "NATS",
    options: { url: "tls://***@h:1", user: "ops", pass: "***", token: "***", nested: [{ password: "***" }], check: fn },
    maxQueueSize: 5,
  });
});
