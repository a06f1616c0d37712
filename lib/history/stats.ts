/** Dashboard numbers from the last hour of history records. */
export interface StatSample {
  ts: number;
  status: number;
  duration_ms: number;
  ttft_ms: number | null;
  tokens_out: number | null;
}

export interface MinuteBucket {
  minute: string;
  success: number;
  error: number;
  /** Median latency and time to first token of the minute's requests (null without any). */
  latency_p50_ms: number | null;
  ttft_p50_ms: number | null;
}

function percentile(sorted: Float64Array, p: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Numbers of the samples of the 60 minutes up to `now` (others are skipped): one pass, no copies of records. */
export function hourStats(samples: Iterable<StatSample>, now: number) {
  const start = Math.floor(now / 60_000) * 60_000 - 59 * 60_000;
  const minutes: MinuteBucket[] = Array.from({ length: 60 }, (_, i) => ({
    minute: new Date(start + i * 60_000).toISOString(),
    success: 0,
    error: 0,
    latency_p50_ms: null as number | null,
    ttft_p50_ms: null as number | null,
  }));
  const perMinute = Array.from({ length: 60 }, () => ({ lat: [] as number[], ttft: [] as number[] }));
  const latencies: number[] = [];
  const ttfts: number[] = [];
  let tokens = 0;
  let generatingMs = 0;
  for (const s of samples) {
    const i = Math.floor((s.ts - start) / 60_000);
    if (i < 0 || i >= 60) continue;
    if (s.status < 400) minutes[i].success++;
    else minutes[i].error++;
    latencies.push(s.duration_ms);
    perMinute[i].lat.push(s.duration_ms);
    if (s.ttft_ms !== null) {
      ttfts.push(s.ttft_ms);
      perMinute[i].ttft.push(s.ttft_ms);
    }
    if (s.status < 400 && s.tokens_out) {
      tokens += s.tokens_out;
      generatingMs += Math.max(1, s.duration_ms - (s.ttft_ms ?? 0));
    }
  }
  perMinute.forEach((m, i) => {
    minutes[i].latency_p50_ms = percentile(Float64Array.from(m.lat).sort(), 50);
    minutes[i].ttft_p50_ms = percentile(Float64Array.from(m.ttft).sort(), 50);
  });
  // typed arrays sort numerically without a comparator call per pair
  const lat = Float64Array.from(latencies).sort();
  const ttf = Float64Array.from(ttfts).sort();
  const total = minutes.reduce((a, m) => a + m.success + m.error, 0);
  const errors = minutes.reduce((a, m) => a + m.error, 0);
  return {
    window_minutes: 60,
    per_minute: minutes,
    total_requests: total,
    error_requests: errors,
    success_rate: total ? Math.round(((total - errors) / total) * 1000) / 10 : null,
    latency_ms: { p50: percentile(lat, 50), p90: percentile(lat, 90), p99: percentile(lat, 99) },
    ttft_ms: { p50: percentile(ttf, 50), p90: percentile(ttf, 90), p99: percentile(ttf, 99) },
    tokens_out: tokens,
    /** Output tokens per second of generation, over successful requests. */
    tokens_per_second: generatingMs ? Math.round((tokens / generatingMs) * 10_000) / 10 : null,
  };
}
