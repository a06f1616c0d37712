/** Small helpers for the benchmarks: keep-alive HTTP timing and percentiles. */
import http from "node:http";

export const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

export interface Timing {
  /** µs until the response is complete */
  total: number;
  /** µs until the first SSE event with content, when streaming */
  firstContent?: number;
}

/** POSTs JSON and times it with hrtime; streams are read to the end. */
export function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Timing> {
  const data = JSON.stringify(body);
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(
      {
        agent,
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(data) },
      },
      (res) => {
        let firstContent: number | undefined;
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (res.statusCode !== 200) buf += chunk;
          else if (firstContent === undefined) {
            buf += chunk;
            if (/"content":"[^"]/.test(buf)) firstContent = Number(process.hrtime.bigint() - t0) / 1000;
          }
        });
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${buf.slice(0, 300)}`));
          resolve({ total: Number(process.hrtime.bigint() - t0) / 1000, firstContent });
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export const fmt = (us: number) => (us >= 10_000 ? `${(us / 1000).toFixed(1)} ms` : `${Math.round(us)} µs`);
