import {
  generateNodeToken,
  hashNodeToken,
  looksLikeNodeToken,
  nodeTokenMatches,
} from "../../../../lib/auth/node-tokens";
import { applyAgentReport } from "../../../../lib/runtimes/agent-report";
import { externalHeartbeat } from "../../../../lib/runtimes/external-heartbeat";

describe("node tokens", () => {
  test("are nt- and 256 random bits, and match only their own hash", () => {
    const a = generateNodeToken();
    const b = generateNodeToken();
    expect(a).toMatch(/^nt-[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(looksLikeNodeToken(a)).toBe(true);
    expect(nodeTokenMatches(a, hashNodeToken(a))).toBe(true);
    expect(nodeTokenMatches(b, hashNodeToken(a))).toBe(false);
    expect(nodeTokenMatches(a, undefined)).toBe(false);
    expect(nodeTokenMatches(a, "abcd")).toBe(false);
  });

  test("an API key or a login token does not look like one", () => {
    expect(looksLikeNodeToken(`sk-${"A".repeat(43)}`)).toBe(false);
    expect(looksLikeNodeToken("eyJhbGciOiJIUzI1NiJ9.e30.x")).toBe(false);
    expect(nodeTokenMatches(`sk-${"A".repeat(43)}`, hashNodeToken(`sk-${"A".repeat(43)}`))).toBe(false);
  });
});

describe("an agent's report merged into its runtime's heartbeat", () => {
  const hb = externalHeartbeat("ext-1", "box", "http://box:8080/v1", ["m"], 4);

  test("takes CPU, memory (percent), active requests and one GPU", () => {
    const merged = applyAgentReport(
      hb,
      {
        cpu_usage: 45.5,
        memory_usage: 60,
        active_requests: 3,
        gpu_usage: 80,
        gpu_memory_used_bytes: 2,
        gpu_memory_total_bytes: 8,
      },
      1000,
    );
    expect(merged).toMatchObject({
      nodeID: "ext-1",
      models: hb.models,
      cpu: { usage: 45.5 },
      memory: { used: 60, total: 100 },
      active: 3,
      gpus: [{ name: "GPU", utilization: 80, vramUsed: 2, vramTotal: 8 }],
      sentAt: 1000,
    });
  });

  test("keeps what a partial report leaves out", () => {
    const merged = applyAgentReport(hb, { cpu_usage: 10 });
    expect(merged.memory).toEqual(hb.memory);
    expect(merged.active).toBe(hb.active);
    expect(merged.gpus).toEqual([]);
  });
});
