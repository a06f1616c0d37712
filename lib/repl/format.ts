/**
 * Text for the ops console (`llm-router repl`): pure functions of the JSON
 * the cluster's actions answer (registry.list, balancer.explain, history.list,
 * registry.models, models.list), so they are tested without a broker.
 */
import type { RouteExplanation } from "../routing/explain";

/** The fields of a `registry.list` row the console shows. */
export interface NodeRow {
  id: string;
  display_name: string;
  status: string;
  draining: boolean;
  models: string[];
  active_requests: number;
  queued_requests: number;
  capacity: number;
  cpu_usage: number;
  tokens_per_second: number;
  gpus: Array<{ utilization: number | null; vram_used_bytes: number; vram_total_bytes: number }>;
}

/** The fields of a `history.list` record the console shows. */
export interface HistoryRow {
  started_at: string;
  model: string | null;
  node_id: string | null;
  status: number;
  duration_ms: number;
  tokens_in: number | null;
  tokens_out: number | null;
  error?: string | null;
}

export interface ServedModel {
  id: string;
  /** Loaded on these nodes. */
  nodes: string[];
  status?: "loaded" | "available";
  /** On these nodes' disks, not loaded (loaded by the first request). */
  available_on?: string[];
}

export interface CatalogRow {
  id: string;
  source?: string;
  size?: number | null;
  nodes?: string[];
}

/** Left-aligned columns, two spaces apart, with a header and a rule under it. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const GIB = 1024 ** 3;

function num(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits);
}

function gpuCell(gpus: NodeRow["gpus"]): { util: string; vram: string } {
  if (!gpus.length) return { util: "-", vram: "-" };
  const utils = gpus.map((g) => g.utilization).filter((u): u is number => u !== null);
  const used = gpus.reduce((a, g) => a + g.vram_used_bytes, 0);
  const total = gpus.reduce((a, g) => a + g.vram_total_bytes, 0);
  return {
    util: utils.length ? `${num(utils.reduce((a, b) => a + b, 0) / utils.length, 0)}%` : "-",
    vram: total > 0 ? `${num(used / GIB)}/${num(total / GIB)}G` : "-",
  };
}

/** `nodes`: the node table with each node's live metrics. */
export function formatNodes(nodes: NodeRow[]): string {
  if (!nodes.length) return "No inference nodes known yet.";
  const rows = nodes.map((n) => {
    const gpu = gpuCell(n.gpus);
    return [
      n.id,
      n.display_name,
      n.draining ? `${n.status}, draining` : n.status,
      n.models.join(",") || "-",
      String(n.active_requests + (n.queued_requests ?? 0)),
      String(n.capacity),
      `${num(n.cpu_usage, 0)}%`,
      gpu.util,
      gpu.vram,
      num(n.tokens_per_second),
    ];
  });
  const header = ["NODE", "NAME", "STATUS", "MODELS", "ACTIVE", "CAPACITY", "CPU", "GPU", "VRAM", "TOKENS/S"];
  return table(header, rows);
}

function factorText(v: number | string | boolean | null): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/\.?0+$/, "");
  if (v === null) return "-";
  return String(v);
}

/** `route <model>`: what the balancer would do now, each candidate's score, and who was left out. */
export function formatRoute(ex: RouteExplanation): string {
  const out = [
    `model ${ex.model} via router ${ex.router}, strategy ${ex.strategy}`,
    `rule: ${ex.rule}`,
    `decision: ${ex.verdict}`,
  ];
  if (ex.queued > 0) out.push(`queued at this router for the model: ${ex.queued}`);
  if (ex.candidates.length) {
    out.push("candidates:");
    for (const c of ex.candidates) {
      const mark = c.chosen ? "*" : " ";
      const factors = Object.entries(c.factors)
        .map(([k, v]) => `${k}=${factorText(v)}`)
        .join(" ");
      const seen = c.seen ? "" : " (not considered)";
      const note = c.note ? ` [${c.note}]` : "";
      out.push(
        `${mark} ${c.nodeID} (${c.machineName}) score=${factorText(c.score)} slots=${c.active}/${c.capacity}${seen}${note}`,
      );
      if (factors) out.push(`    ${factors}`);
    }
  }
  if (ex.filtered.length) {
    out.push("filtered out:");
    for (const f of ex.filtered) out.push(`  ${f.nodeID}: ${f.reason}`);
  }
  return out.join("\n");
}

/** One line per request, oldest first (pass `history.list`'s records, newest first, as they come). */
export function formatHistory(records: HistoryRow[]): string {
  if (!records.length) return "No requests recorded.";
  return [...records]
    .reverse()
    .map((r) => {
      const time = r.started_at.replace("T", " ").replace(/\.\d+Z$/, "Z");
      const tokens = `${r.tokens_in ?? "-"}→${r.tokens_out ?? "-"} tok`;
      const err = r.status >= 400 && r.error ? `  ${r.error.slice(0, 80)}` : "";
      return `${time}  ${r.model ?? "-"}  ${r.node_id ?? "-"}  ${r.status}  ${Math.round(r.duration_ms)} ms  ${tokens}${err}`;
    })
    .join("\n");
}

/** `models`: what the nodes serve now, and the catalog (null: no models service in the cluster). */
export function formatModels(served: ServedModel[], catalog: CatalogRow[] | null): string {
  const out = [
    "Served now (loaded, or on a node's disk and loaded by the first request):",
    served.length
      ? table(
          ["MODEL", "STATUS", "LOADED ON", "AVAILABLE ON"],
          served.map((m) => [
            m.id,
            m.status ?? "loaded",
            m.nodes.join(", ") || "-",
            m.available_on?.length ? m.available_on.join(", ") : "-",
          ]),
        )
      : "  (no model is served by an online node)",
  ];
  out.push("", "Catalog:");
  if (catalog === null) out.push("  (no models service in the cluster)");
  else if (!catalog.length) out.push("  (empty)");
  else {
    out.push(
      table(
        ["ID", "SOURCE", "SIZE", "ON NODES"],
        catalog.map((m) => [
          m.id,
          m.source ?? "-",
          m.size ? `${num(m.size / 1024 ** 2)} MiB` : "-",
          m.nodes?.length ? m.nodes.join(", ") : "-",
        ]),
      ),
    );
  }
  return out.join("\n");
}
