/**
 * `llm-router healthcheck`, light enough for a container's HEALTHCHECK (it
 * loads no service, no broker and no node-llama-cpp): exit 0 when this
 * container's process is healthy, 1 otherwise, with the reason on stdout.
 *
 * - A process whose SERVICES include `api`: `GET /health?ready=1` on its own
 *   port, which answers 503 until every service of the process (history
 *   loaded, the embedded inference node serving…) is ready.
 * - With `LLM_HEALTH_FILE` set (the images set it): the beat file that
 *   `start` rewrites while its broker runs and is connected to the transporter
 *   must be younger than `--max-age` seconds (default 30).
 *
 * Run as `node --import tsx bin/healthcheck.ts [--max-age S]`.
 */
import { parseArgs } from "node:util";
import { healthFile, routerConfig, selectedServices } from "../lib/config";
import { DEFAULT_MAX_AGE_MS, localHealthUrl, runHealthcheck, type HealthcheckPlan } from "../lib/cluster/liveness";

export function healthcheckPlan(args: string[]): HealthcheckPlan {
  const { values } = parseArgs({ args, options: { "max-age": { type: "string" } } });
  const maxAgeSecs = values["max-age"] === undefined ? DEFAULT_MAX_AGE_MS / 1000 : Number(values["max-age"]);
  if (!Number.isFinite(maxAgeSecs) || maxAgeSecs <= 0) throw new Error("--max-age must be a number of seconds > 0");
  const hostsApi = selectedServices().includes("api");
  const { host, port } = routerConfig();
  return {
    url: hostsApi && port !== 0 ? localHealthUrl(host, port, true) : null,
    file: healthFile(),
    maxAgeMs: maxAgeSecs * 1000,
  };
}

export async function healthcheck(args: string[]): Promise<number> {
  const result = await runHealthcheck(healthcheckPlan(args));
  console.log(`${result.ok ? "healthy" : "unhealthy"}: ${result.reason}`);
  return result.ok ? 0 : 1;
}

if (require.main === module) {
  healthcheck(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.log(`unhealthy: ${err.message}`);
      process.exit(1);
    },
  );
}
