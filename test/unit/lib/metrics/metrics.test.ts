import { parseNvidiaSmi, NvidiaSmi } from "../../../../lib/metrics/gpu";
import { Throughput } from "../../../../lib/inference/throughput";

describe("nvidia-smi parsing", () => {
  test("reads name, utilisation and VRAM (MiB to bytes) per GPU", () => {
    const csv = "NVIDIA H100 80GB HBM3, 37, 1024, 81559\nNVIDIA H100 80GB HBM3, [N/A], 0, 81559\n";
    expect(parseNvidiaSmi(csv)).toEqual([
      { name: "NVIDIA H100 80GB HBM3", utilization: 37, vramUsed: 1024 * 1048576, vramTotal: 81559 * 1048576 },
      { name: "NVIDIA H100 80GB HBM3", utilization: null, vramUsed: 0, vramTotal: 81559 * 1048576 },
    ]);
  });

  test("a missing binary answers null without throwing", async () => {
    const smi = new NvidiaSmi("/nonexistent/nvidia-smi");
    await expect(smi.query()).resolves.toBeNull();
    await expect(smi.query()).resolves.toBeNull();
  });
});

describe("Throughput", () => {
  test("tokens over generation time of recent samples", () => {
    const t = new Throughput(2, 1000);
    t.record(100, 1000, 0);
    expect(t.tokensPerSecond(0)).toBe(100);
    t.record(300, 1000, 10);
    expect(t.tokensPerSecond(10)).toBe(200);
    t.record(50, 500, 20); // the first sample drops out (size 2)
    expect(t.tokensPerSecond(20)).toBe(233.3);
    expect(t.tokensPerSecond(5000)).toBe(0); // all too old
  });
});
