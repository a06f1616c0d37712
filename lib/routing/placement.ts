/**
 * Where a model that no node has loaded is loaded: the node that can take it
 * soonest. Nodes where it fits without unloading anything come first, then
 * those that unload fewest models (lib/inference/eviction.ts decides as the
 * node will), then nodes with a GPU, then the most memory left, then the
 * least busy. A node where it cannot fit at all (larger than its budget, or
 * its memory held by busy or pinned models) is not a choice. Pure.
 */
import { planEviction, type LoadedSlot } from "../inference/eviction";
import { catalogEntry } from "../cluster/node-table";
import type { NodeRecord } from "../cluster/types";

export interface Placement {
  nodeID: string;
  /** The models it will unload first. */
  evictions: string[];
}

/** What node `n` holds loaded (or loading), as the eviction plan sees it (every model idle with `ignoreBusy`). */
function slotsOf(n: NodeRecord, ignoreBusy: boolean): LoadedSlot[] {
  const out: LoadedSlot[] = [];
  for (const c of n.catalog ?? []) {
    if (c.state !== "ready" && c.state !== "loading" && c.state !== "unloading") continue;
    const m = n.models.find((x) => x.id === c.id);
    out.push({
      id: c.id,
      bytes: c.memoryBytes,
      busy: !ignoreBusy && (c.inUse > 0 || (m !== undefined && m.active + m.queued > 0)),
      pinned: c.pinned,
      settled: c.state === "ready",
      lastUsedAt: c.lastUsedAt ?? 0,
    });
  }
  return out;
}

/**
 * The best node of `nodes` (each has `model` on disk, not loaded) to load it
 * on; null when it fits on none. With `ignoreBusy`: where it would fit once
 * the requests running there have finished.
 */
export function placeLoad(
  nodes: readonly NodeRecord[],
  model: string,
  busy: (n: NodeRecord) => number,
  opts: { ignoreBusy?: boolean } = {},
): Placement | null {
  let best: { p: Placement; key: number[] } | null = null;
  for (const n of nodes) {
    const entry = catalogEntry(n, model);
    if (!entry) continue;
    const limits = { maxLoaded: n.modelMemory?.maxLoaded ?? null, budgetBytes: n.modelMemory?.budgetBytes ?? null };
    const evictions = planEviction(slotsOf(n, opts.ignoreBusy === true), entry.estimatedBytes ?? 0, limits);
    if (evictions === null) continue;
    const free =
      limits.budgetBytes === null ? Number.MAX_SAFE_INTEGER : limits.budgetBytes - (n.modelMemory?.usedBytes ?? 0);
    // smaller is better, in this order
    const key = [evictions.length, n.gpuBackend ? 0 : 1, -free, busy(n)];
    if (!best || less(key, best.key)) best = { p: { nodeID: n.id, evictions }, key };
  }
  return best?.p ?? null;
}

function less(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}
