/** bench/gpu-measure.ts's results (gpu-results.json) and their summary (gpu-summary.md). */
import type { Json } from "./gpu-common";
import type { SmiGpu } from "./gpu-heartbeat";

/** gpu-results.json: what a run measured, saved after each part and when it stops. */
export interface Results {
  ok: boolean;
  failedStep?: string;
  error?: string;
  mode: string;
  startedAt: string;
  machine: Record<string, unknown>;
  config: Record<string, unknown>;
  steps: Array<{ name: string; seconds: number; ok: boolean }>;
  [k: string]: unknown;
}

/** gpu-summary.md: the results in a few lines and tables. */
export function summary(r: Results): string {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(
    `# GPU bench (bench/gpu.sh), mode ${r.mode}: ${r.ok ? "OK" : `FAILED${r.failedStep ? ` at '${r.failedStep}'` : ""}`}`,
  );
  lines.push("");
  lines.push(`${r.startedAt}; ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}`);
  for (const s of (r.setup as string[] | undefined) ?? []) lines.push(`- ${s}`);
  const smi = r.nvidiaSmiAtStart as SmiGpu[] | null | undefined;
  if (smi?.length) lines.push(`GPU (nvidia-smi): ${smi.map((g) => `${g.name}, ${g.memoryTotalMiB} MiB`).join("; ")}`);
  const b = r.binding as Record<string, unknown> | undefined;
  if (b) {
    lines.push(
      `node-llama-cpp binding: gpu ${JSON.stringify(b.gpu)}, ${b.buildType}, ${JSON.stringify(b.devices ?? [])}, ` +
        `${b.gpuLayers} layers offloaded, model loaded in ${b.modelLoadSeconds} s`,
    );
  }
  const model = r.model as Record<string, unknown> | undefined;
  const cfg = r.config as Record<string, Json>;
  if (model) {
    lines.push(
      `Model: generated llama, ${cfg.model.embedding} × ${cfg.model.layers} layers, ff ${cfg.model.feedForward}, ` +
        `${cfg.model.heads}/${cfg.model.kvHeads} heads, f16, ${((model.parameters as number) / 1e6).toFixed(0)} M parameters, ` +
        `${model.mib} MiB (written in ${model.seconds} s)`,
    );
  }
  lines.push(
    `Requests: chat, streamed, temperature 0, max_tokens ${cfg.maxTokens}; ${cfg.rounds} rounds × ${cfg.batches} batches ` +
      `of P concurrent; context ${cfg.context}, ${cfg.parallel} sequences, ${cfg.threads} threads`,
  );
  const t = r.throughput as Record<string, Json> | undefined;
  if (t) {
    lines.push("");
    lines.push("| P | direct tok/s | via router tok/s | router / direct (paired) | TTFT direct | TTFT router |");
    lines.push("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const p of Object.keys(t.direct)) {
      const d = t.direct[p];
      const rt = t.router[p];
      lines.push(
        `| ${p} | ${d.tokensPerSecondMedian} | ${rt.tokensPerSecondMedian} | ${(t.routerOverDirect[p] * 100).toFixed(1)} % | ` +
          `${d.ttftMsMedian} ms | ${rt.ttftMsMedian} ms |`,
      );
    }
  }
  const cpu = r.directCpu as Record<string, Json> | undefined;
  if (cpu) {
    lines.push("");
    lines.push(
      `Same model on the CPU, directly (${cpu.threads} threads, max_tokens ${cpu.maxTokens}): ` +
        Object.entries(cpu.levels as Record<string, Json>)
          .map(([p, v]) => `P=${p} ${v.tokensPerSecondMedian} tok/s`)
          .join(", "),
    );
  }
  const hb = r.heartbeat as { checks: Record<string, Json>; samples: Array<Record<string, Json>> } | undefined;
  if (hb) {
    lines.push("");
    lines.push(`Heartbeat vs nvidia-smi: ${hb.checks.ok ? "match" : "MISMATCH"} ${JSON.stringify(hb.checks)}`);
    lines.push("");
    lines.push("| phase | heartbeat: name, util %, used / total MiB | nvidia-smi: name, util %, used / total MiB |");
    lines.push("| --- | --- | --- |");
    for (const s of hb.samples) {
      const h = s.heartbeat?.gpus?.[0];
      const g = s.nvidiaSmi?.[0];
      const fmt = (x: SmiGpu | undefined) =>
        x ? `${x.name}, ${x.utilization}, ${x.memoryUsedMiB} / ${x.memoryTotalMiB}` : "(none)";
      lines.push(`| ${s.phase} | ${fmt(h)} | ${fmt(g)} |`);
    }
  }
  const fb = r.heartbeatWithoutNvidiaSmi as Record<string, Json> | undefined;
  if (fb) {
    lines.push("");
    const fmt = (x: SmiGpu | undefined) =>
      x ? `${x.name}, util ${x.utilization}, ${x.memoryUsedMiB} / ${x.memoryTotalMiB} MiB` : "(no GPU)";
    const checks = Object.entries(fb.checks as Record<string, boolean>)
      .map(([k, v]) => `${k} ${v ? "yes" : "NO"}`)
      .join(", ");
    lines.push(
      `Without nvidia-smi on the node's PATH, the heartbeat carries node-llama-cpp's report: ` +
        `${fmt(fb.heartbeat?.[0])} vs nvidia-smi ${fmt(fb.nvidiaSmi?.[0])}: ${checks}`,
    );
  }
  if (r.error) {
    lines.push("");
    lines.push("Error: " + String(r.error).split("\n").slice(0, 6).join("\n  "));
  }
  lines.push("");
  lines.push("Steps: " + r.steps.map((s) => `${s.name} ${s.seconds} s${s.ok ? "" : " (FAILED)"}`).join("; "));
  return lines.join("\n") + "\n";
}
