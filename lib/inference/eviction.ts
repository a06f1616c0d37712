/**
 * Which loaded models a node unloads to make room for another: pure, so the
 * node (before a load) and the router (choosing the node that can take a
 * model soonest) decide the same way.
 *
 * A model serving or waiting for a request, a pinned one, and one loading or
 * unloading are never chosen; the rest go least recently used first, only as
 * many as needed to stay within both the count and the memory budget.
 */

export interface LoadedSlot {
  id: string;
  /** Memory it holds (its estimate when loaded). */
  bytes: number;
  /** Requests running or waiting on it. */
  busy: boolean;
  pinned: boolean;
  /** Only `ready` models can be unloaded; one loading or unloading counts but is not chosen. */
  settled: boolean;
  /** Last request finished (ms epoch); 0 when never used. */
  lastUsedAt: number;
}

export interface Limits {
  /** Most models loaded at once (null: no limit). */
  maxLoaded: number | null;
  /** Most memory the loaded models may hold (null: no limit). */
  budgetBytes: number | null;
}

/**
 * The models to unload, in order, before a model of `needBytes` is loaded
 * beside `loaded`; null when it cannot fit even then (larger than the
 * budget, or too much held by models that cannot go).
 */
export function planEviction(loaded: readonly LoadedSlot[], needBytes: number, limits: Limits): string[] | null {
  if (limits.budgetBytes !== null && needBytes > limits.budgetBytes) return null;
  let count = loaded.length;
  let used = loaded.reduce((n, m) => n + m.bytes, 0);
  const fits = () =>
    (limits.maxLoaded === null || count + 1 <= limits.maxLoaded) &&
    (limits.budgetBytes === null || used + needBytes <= limits.budgetBytes);
  if (fits()) return [];
  const evictable = loaded
    .filter((m) => m.settled && !m.busy && !m.pinned)
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt || a.id.localeCompare(b.id));
  const out: string[] = [];
  for (const m of evictable) {
    out.push(m.id);
    count--;
    used -= m.bytes;
    if (fits()) return out;
  }
  return null;
}
