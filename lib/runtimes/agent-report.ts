/**
 * A heartbeat pushed by an external agent (`POST /api/health`, the seed's
 * shape) merged into what the registry knows of its runtime, so the balancer
 * sees the machine's load and GPUs and not only what `/models` tells.
 */
import type { GpuStat, Heartbeat } from "../cluster/types";

export interface AgentReport {
  cpu_usage?: number;
  /** Percent of memory in use (the seed's field). */
  memory_usage?: number;
  active_requests?: number;
  gpu_usage?: number;
  gpu_memory_used_bytes?: number;
  gpu_memory_total_bytes?: number;
  gpu_model?: string;
}

export function applyAgentReport(hb: Heartbeat, report: AgentReport, now = Date.now()): Heartbeat {
  const gpus: GpuStat[] =
    report.gpu_usage !== undefined || report.gpu_memory_total_bytes !== undefined
      ? [
          {
            name: report.gpu_model ?? hb.gpus[0]?.name ?? "GPU",
            utilization: report.gpu_usage ?? null,
            vramUsed: report.gpu_memory_used_bytes ?? 0,
            vramTotal: report.gpu_memory_total_bytes ?? 0,
          },
        ]
      : hb.gpus;
  return {
    ...hb,
    cpu: { ...hb.cpu, usage: report.cpu_usage ?? hb.cpu.usage },
    // the seed reports memory as a percentage; kept as used/total of 100
    memory: report.memory_usage !== undefined ? { used: report.memory_usage, total: 100 } : hb.memory,
    active: report.active_requests ?? hb.active,
    gpus,
    sentAt: now,
  };
}
