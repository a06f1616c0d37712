/** The JSON a client sees for a node (snake_case, as the seed's `/api/agents` did). */
import { DEFAULT_NODE_SETTINGS, type NodeRecord, type NodeSettings } from "./types";

export function nodeView(n: NodeRecord, ipAddress: string | null, settings: NodeSettings = DEFAULT_NODE_SETTINGS) {
  const gpuNames = n.gpus.map((g) => g.name);
  const counts = new Map<string, number>();
  for (const name of gpuNames) counts.set(name, (counts.get(name) ?? 0) + 1);
  return {
    id: n.id,
    kind: n.baseUrl ? "external" : "inference",
    base_url: n.baseUrl ?? null,
    machine_name: n.machineName,
    display_name: settings.displayName ?? n.machineName,
    tags: settings.tags,
    notes: settings.notes,
    draining: settings.draining,
    ip_address: ipAddress,
    status: n.status,
    engine: n.engine,
    registered_at: n.registeredAt,
    last_seen: n.lastSeen,
    models: n.models.map((m) => m.id),
    model_details: n.models.map((m) => ({
      id: m.id,
      context_size: m.contextSize,
      parallel: m.parallel,
      size_bytes: m.sizeBytes,
      active: m.active,
      queued: m.queued,
    })),
    // every model file the node has, loaded or not (inference nodes)
    model_files: (n.catalog ?? []).map((c) => ({
      id: c.id,
      state: c.state,
      error: c.error,
      size_bytes: c.sizeBytes,
      quantization: c.quantization,
      estimated_bytes: c.estimatedBytes,
      memory_bytes: c.memoryBytes,
      pinned: c.pinned,
      in_use: c.inUse,
      last_used_at: c.lastUsedAt === null ? null : new Date(c.lastUsedAt).toISOString(),
      load_ms: c.loadMs,
      loads: c.loads,
    })),
    model_memory: n.modelMemory
      ? {
          max_loaded: n.modelMemory.maxLoaded,
          budget_bytes: n.modelMemory.budgetBytes,
          used_bytes: n.modelMemory.usedBytes,
        }
      : null,
    active_requests: n.active,
    queued_requests: n.queued,
    capacity: n.capacity,
    cpu_usage: n.cpu.usage,
    cpu_cores: n.cpu.cores,
    memory_usage: n.memory.total > 0 ? Math.round((n.memory.used / n.memory.total) * 1000) / 10 : 0,
    memory_used_bytes: n.memory.used,
    memory_total_bytes: n.memory.total,
    tokens_per_second: n.tokensPerSecond,
    gpu_available: n.gpus.length > 0,
    gpu_backend: n.gpuBackend,
    gpu_devices: [...counts].map(([model, count]) => ({ model, count })),
    gpu_count: n.gpus.length,
    gpu_model: gpuNames[0] ?? null,
    gpus: n.gpus.map((g) => ({
      name: g.name,
      utilization: g.utilization,
      vram_used_bytes: g.vramUsed,
      vram_total_bytes: g.vramTotal,
    })),
  };
}
