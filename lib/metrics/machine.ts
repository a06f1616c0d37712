/**
 * A node's machine metrics for its heartbeat: CPU and memory from
 * systeminformation, GPUs from nvidia-smi, else what the engine reports
 * (device names, and the first device's VRAM).
 */
import os from "node:os";
import si from "systeminformation";
import type { Heartbeat } from "../cluster/types";
import type { Engine } from "../inference/types";
import type { NvidiaSmi } from "./gpu";

export type MachineStats = Pick<Heartbeat, "cpu" | "memory" | "gpus">;

export function idleMachine(): MachineStats {
  return { cpu: { usage: 0, cores: os.cpus().length }, memory: { used: 0, total: os.totalmem() }, gpus: [] };
}

export async function collectMachine(nvidiaSmi: NvidiaSmi, engine: Engine | null): Promise<MachineStats> {
  const [load, mem, smi, engineGpu] = await Promise.all([
    si.currentLoad(),
    si.mem(),
    nvidiaSmi.query(),
    engine ? engine.gpuInfo() : Promise.resolve(null),
  ]);
  const vram = engineGpu?.vram;
  const gpus =
    smi ??
    (vram
      ? engineGpu.devices.map((name, i) => ({
          name,
          utilization: null,
          vramUsed: i === 0 ? vram.used : 0,
          vramTotal: i === 0 ? vram.total : 0,
        }))
      : []);
  return {
    cpu: { usage: Math.round(load.currentLoad * 10) / 10, cores: os.cpus().length },
    memory: { used: mem.active, total: mem.total },
    gpus,
  };
}
