/**
 * A node's recent metrics, for the dashboard's node detail chart: one sample
 * per heartbeat (at most one per `minGapMs`), the last `windowMs` kept.
 */
import type { NodeRecord } from "./types";

export interface MetricSample {
  ts: number;
  cpu: number;
  memory: number;
  /** Mean utilisation over the node's GPUs, or null without GPUs. */
  gpu: number | null;
  vram_used_bytes: number | null;
  vram_total_bytes: number | null;
  active: number;
  capacity: number;
  tokens_per_second: number;
}

export function sampleOf(n: Omit<NodeRecord, "id" | "status" | "registeredAt" | "lastSeen">, ts: number): MetricSample {
  const gpus = n.gpus;
  const sum = (pick: (g: (typeof gpus)[number]) => number | null) => gpus.reduce((a, g) => a + (pick(g) ?? 0), 0);
  return {
    ts,
    cpu: n.cpu.usage,
    memory: n.memory.total > 0 ? Math.round((n.memory.used / n.memory.total) * 1000) / 10 : 0,
    gpu: gpus.length ? Math.round((sum((g) => g.utilization) / gpus.length) * 10) / 10 : null,
    vram_used_bytes: gpus.length ? sum((g) => g.vramUsed) : null,
    vram_total_bytes: gpus.length ? sum((g) => g.vramTotal) : null,
    active: n.active,
    capacity: n.capacity,
    tokens_per_second: n.tokensPerSecond,
  };
}

export class MetricHistory {
  private readonly samples = new Map<string, MetricSample[]>();

  constructor(
    private readonly windowMs = 60 * 60_000,
    private readonly minGapMs = 2_000,
  ) {}

  add(nodeID: string, s: MetricSample): void {
    let list = this.samples.get(nodeID);
    if (!list) this.samples.set(nodeID, (list = []));
    const last = list[list.length - 1];
    if (last && s.ts - last.ts < this.minGapMs) return;
    list.push(s);
    const cutoff = s.ts - this.windowMs;
    let drop = 0;
    while (drop < list.length && list[drop].ts < cutoff) drop++;
    if (drop) list.splice(0, drop);
  }

  of(nodeID: string): MetricSample[] {
    return [...(this.samples.get(nodeID) ?? [])];
  }

  remove(nodeID: string): void {
    this.samples.delete(nodeID);
  }
}
