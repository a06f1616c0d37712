/**
 * What the parts of bench/gpu-measure.ts share: the log with the time since
 * bench/gpu.sh's start, the env numbers, medians and rounding, and the types
 * that cross the parts.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the results and the router's answers are read as plain JSON
export type Json = any;
export type GpuOption = "cuda" | false;
/** Runs `fn` as one named step of a run: logged, timed, recorded; a failure names the step. */
export type Step = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

const T0 = Number(process.env.GPU_T0_MS) || Date.now();
export const MIB = 1024 * 1024;

export function log(msg: string): void {
  const now = new Date();
  const since = ((now.getTime() - T0) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[${now.toISOString().slice(11, 19)} +${since}s] ${msg}\n`);
}

export const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new Error(`${name}=${raw} is not a number`);
  return v;
};

export const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const round = (x: number, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);
