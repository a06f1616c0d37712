/**
 * bench/gpu-measure.ts's heartbeat check: the node heartbeat's GPU fields (as
 * the router's /api/nodes shows them) against `nvidia-smi` taken at the same
 * moment, under load and idle; and once more with nvidia-smi out of the
 * node's PATH, so node-llama-cpp's own GPU report is what it sends.
 */
import { execFile } from "node:child_process";
import { type GpuOption, MIB, median, round } from "./gpu-common";
import { json, prepareRouter, type RouterProc } from "./gpu-router";
import type { Runner } from "./gpu-throughput";

// ---- nvidia-smi ---------------------------------------------------------------

export interface SmiGpu {
  name: string;
  utilization: number | null;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
}

const SMI_QUERY = ["--query-gpu=name,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"];

/** The query the issue names, read the way lib/metrics/gpu.ts reads it (MiB); null when nvidia-smi is missing. */
export function nvidiaSmi(): Promise<SmiGpu[] | null> {
  return new Promise((resolve) => {
    execFile("nvidia-smi", SMI_QUERY, { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve(null);
      const n = (s: string | undefined) => (s !== undefined && /^\d+(\.\d+)?$/.test(s.trim()) ? Number(s) : null);
      resolve(
        stdout
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean)
          .map((line) => {
            const [name, util, used, total] = line.split(",").map((s) => s.trim());
            return { name, utilization: n(util), memoryUsedMiB: n(used), memoryTotalMiB: n(total) };
          }),
      );
    });
  });
}

interface NodeGpuView {
  name: string;
  utilization: number | null;
  vram_used_bytes: number;
  vram_total_bytes: number;
}
interface NodeView {
  id: string;
  kind: string;
  gpu_backend: string | false;
  gpus: NodeGpuView[];
  tokens_per_second: number;
  last_seen: string;
  active_requests: number;
}

async function inferenceNode(url: string, token: string): Promise<NodeView | null> {
  const r = await json(`${url}/api/nodes`, { token });
  if (r.status !== 200) throw new Error(`GET /api/nodes: ${r.status} ${JSON.stringify(r.body)}`);
  const list = (Array.isArray(r.body) ? r.body : ((r.body as { data?: NodeView[] })?.data ?? [])) as NodeView[];
  return list.find((n) => n.kind === "inference") ?? null;
}

/**
 * PARALLEL streams through the router kept busy for LOAD_SECONDS, the
 * heartbeat and nvidia-smi sampled each second, then once idle.
 */
export async function heartbeatUnderLoad(
  url: string,
  token: string,
  viaRouter: Runner,
  cfg: { parallel: number; maxTokens: number; loadSeconds: number },
  mode: string,
  gpu: GpuOption,
) {
  const samples: Array<Record<string, unknown>> = [];
  const sample = async (phase: string) => {
    const [node, smi] = await Promise.all([inferenceNode(url, token), nvidiaSmi()]);
    samples.push({
      phase,
      at: new Date().toISOString(),
      heartbeat: node
        ? {
            backend: node.gpu_backend,
            lastSeen: node.last_seen,
            active: node.active_requests,
            tokensPerSecond: node.tokens_per_second,
            gpus: node.gpus.map((g) => ({
              name: g.name,
              utilization: g.utilization,
              memoryUsedMiB: round(g.vram_used_bytes / MIB, 0),
              memoryTotalMiB: round(g.vram_total_bytes / MIB, 0),
            })),
          }
        : null,
      nvidiaSmi: smi,
    });
  };
  // PARALLEL streams kept busy: each worker sends the next request as soon as its last one ends
  let stop = false;
  let kk = 100_000;
  const worker = async () => {
    while (!stop) await viaRouter(kk++, cfg.maxTokens);
  };
  const workers = Array.from({ length: cfg.parallel }, () => worker());
  const end = Date.now() + cfg.loadSeconds * 1000;
  await new Promise((r) => setTimeout(r, 1500)); // the node's next heartbeat carries the load
  while (Date.now() < end) {
    await sample("load");
    await new Promise((r) => setTimeout(r, 1000));
  }
  stop = true;
  await Promise.all(workers);
  await new Promise((r) => setTimeout(r, 3000));
  await sample("idle");
  return { samples, checks: compareHeartbeat(samples, mode, gpu) };
}

/** A router started by `start` (nvidia-smi off its PATH): its heartbeat's GPU 0 against nvidia-smi's. */
export async function heartbeatWithoutNvidiaSmi(
  start: () => Promise<RouterProc>,
  addCleanup: (cleanup: () => Promise<void>) => void,
  modelId: string,
) {
  const r2 = await start();
  addCleanup(() => r2.stop());
  const c2 = await prepareRouter(r2.url, modelId, 180_000);
  await new Promise((r) => setTimeout(r, 2500));
  const [node, smi] = await Promise.all([inferenceNode(r2.url, c2.token), nvidiaSmi()]);
  await r2.stop();
  const hb = node?.gpus.map((g) => ({
    name: g.name,
    utilization: g.utilization,
    memoryUsedMiB: round(g.vram_used_bytes / MIB, 0),
    memoryTotalMiB: round(g.vram_total_bytes / MIB, 0),
  }));
  const h = hb?.[0];
  const s = smi?.[0];
  const checks = {
    name: !!h && !!s && h.name === s.name,
    memoryTotalWithin2Percent:
      !!h &&
      !!s &&
      s.memoryTotalMiB !== null &&
      Math.abs(h.memoryTotalMiB! - s.memoryTotalMiB) <= 0.02 * s.memoryTotalMiB,
    memoryUsedWithin1GiB:
      !!h && !!s && s.memoryUsedMiB !== null && Math.abs(h.memoryUsedMiB! - s.memoryUsedMiB) <= 1024,
    utilizationNullAsDocumented: !!h && h.utilization === null,
  };
  return { backend: node?.gpu_backend, heartbeat: hb, nvidiaSmi: smi, checks };
}

/** Matches each heartbeat sample's GPU 0 with nvidia-smi's at the same moment. */
function compareHeartbeat(samples: Array<Record<string, unknown>>, mode: string, gpu: GpuOption) {
  type Hb = { gpus: SmiGpu[]; backend: string | false } | null;
  const rows = samples.map((s) => ({
    phase: s.phase as string,
    hb: (s.heartbeat as Hb)?.gpus?.[0] ?? null,
    backend: (s.heartbeat as Hb)?.backend,
    smi: (s.nvidiaSmi as SmiGpu[] | null)?.[0] ?? null,
  }));
  const withBoth = rows.filter((r) => r.hb && r.smi);
  if (mode === "cpu" && !rows.some((r) => r.smi)) {
    const noGpu = rows.every((r) => !r.hb);
    return { ok: noGpu, note: "no nvidia-smi here: the heartbeat must list no GPU", heartbeatListsNoGpu: noGpu };
  }
  const load = withBoth.filter((r) => r.phase === "load");
  const name = withBoth.length > 0 && withBoth.every((r) => r.hb!.name === r.smi!.name);
  const total = withBoth.length > 0 && withBoth.every((r) => r.hb!.memoryTotalMiB === r.smi!.memoryTotalMiB);
  // the heartbeat is up to a second (one collection) older than nvidia-smi's answer
  const usedDiff = withBoth.map((r) => Math.abs(r.hb!.memoryUsedMiB! - r.smi!.memoryUsedMiB!));
  const used =
    withBoth.length > 0 && usedDiff.every((d, i) => d <= Math.max(512, 0.05 * withBoth[i].smi!.memoryUsedMiB!));
  const utilDiff = withBoth.map((r) => Math.abs((r.hb!.utilization ?? -1000) - (r.smi!.utilization ?? 0)));
  const utilNumeric = withBoth.every((r) => typeof r.hb!.utilization === "number");
  // the GPU is busy only when the node runs on it
  const utilBusy =
    !gpu || (load.some((r) => (r.hb!.utilization ?? 0) > 0) && load.some((r) => (r.smi!.utilization ?? 0) > 0));
  const backend = rows.every((r) => r.backend === gpu);
  return {
    ok: withBoth.length === rows.length && name && total && used && utilNumeric && utilBusy && backend,
    samples: rows.length,
    samplesWithBoth: withBoth.length,
    name,
    memoryTotalEqual: total,
    memoryUsedWithinMax512MiBOr5Percent: used,
    memoryUsedDiffMiB: { median: round(median(usedDiff), 0), max: usedDiff.length ? Math.max(...usedDiff) : null },
    utilizationNumeric: utilNumeric,
    utilizationAboveZeroUnderLoad: utilBusy,
    utilizationDiffPoints: { median: round(median(utilDiff), 0), max: utilDiff.length ? Math.max(...utilDiff) : null },
    gpuBackendReported: backend,
  };
}
