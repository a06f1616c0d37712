/**
 * GPU utilisation and VRAM from `nvidia-smi`, called asynchronously so the event
 * loop never blocks (systeminformation calls it synchronously). When it is not
 * installed, the first failure is remembered and the caller falls back.
 */
import { execFile } from "node:child_process";
import type { GpuStat } from "../cluster/types";

const QUERY = ["--query-gpu=name,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"];
const MIB = 1024 * 1024;

/** Parses nvidia-smi's CSV (MiB) into GpuStats (bytes). */
export function parseNvidiaSmi(csv: string): GpuStat[] {
  return csv
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const [name, util, used, total] = line.split(",").map((s) => s.trim());
      const num = (s: string) => (/^\d+(\.\d+)?$/.test(s) ? Number(s) : null);
      return {
        name,
        utilization: num(util),
        vramUsed: (num(used) ?? 0) * MIB,
        vramTotal: (num(total) ?? 0) * MIB,
      };
    });
}

export class NvidiaSmi {
  private available = true;

  constructor(private readonly bin = "nvidia-smi") {}

  /** GPU stats, or null when nvidia-smi is missing or failed. */
  query(): Promise<GpuStat[] | null> {
    if (!this.available) return Promise.resolve(null);
    return new Promise((resolve) => {
      execFile(this.bin, QUERY, { timeout: 3000 }, (err, stdout) => {
        if (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") this.available = false;
          resolve(null);
          return;
        }
        resolve(parseNvidiaSmi(stdout));
      });
    });
  }
}
