/** Decode speed over the most recent generations (tokens / seconds spent generating). */
export class Throughput {
  private readonly samples: Array<{ tokens: number; ms: number; at: number }> = [];

  constructor(
    private readonly size = 32,
    private readonly maxAgeMs = 5 * 60_000,
  ) {}

  record(tokens: number, ms: number, now = Date.now()): void {
    if (tokens <= 0 || ms <= 0) return;
    this.samples.push({ tokens, ms, at: now });
    if (this.samples.length > this.size) this.samples.shift();
  }

  tokensPerSecond(now = Date.now()): number {
    let tokens = 0;
    let ms = 0;
    for (const s of this.samples) {
      if (now - s.at > this.maxAgeMs) continue;
      tokens += s.tokens;
      ms += s.ms;
    }
    return ms > 0 ? Math.round((tokens / ms) * 1000 * 10) / 10 : 0;
  }
}
