/**
 * bench/gpu-measure.ts's router: started as `npm start` runs it (all services
 * in one process, one local inference node), logged in to as the admin, and
 * its JSON API.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import type { Json } from "./gpu-common";

export interface RouterProc {
  child: ChildProcess;
  url: string;
  output: () => string;
  stop(): Promise<void>;
}

export const ADMIN_PASSWORD = "gpu-bench-admin-password";

export async function startRouter(
  main: string,
  env: Record<string, string | undefined>,
  logFile: string,
  timeoutMs = 180_000,
): Promise<RouterProc> {
  const args = main.endsWith(".ts") ? ["--import", "tsx", main, "start"] : [main, "start"];
  const child = spawn(process.execPath, args, { env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const sink = fs.createWriteStream(logFile, { flags: "a" });
  const take = (b: Buffer) => {
    out += b.toString("utf8");
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    sink.write(b);
  };
  child.stdout!.on("data", take);
  child.stderr!.on("data", take);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    sink.end();
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = out.match(/LLM Router listening on (http:\/\/\S+)/);
    if (m) return { child, url: m[1].replace(/\/$/, ""), output: () => out, stop };
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `the router ${child.exitCode !== null ? `exited with ${child.exitCode}` : "did not listen in time"}:\n${out.slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function json(
  url: string,
  init: RequestInit & { token?: string } = {},
): Promise<{ status: number; body: Json }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
  const text = await res.text();
  try {
    return { status: res.status, body: text ? JSON.parse(text) : null };
  } catch {
    return { status: res.status, body: text };
  }
}

async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | null | undefined | false>) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Logs in as the admin, makes an API key, waits until the model is served; returns both credentials. */
export async function prepareRouter(url: string, model: string, timeoutMs: number) {
  const login = await json(`${url}/api/auth/login`, {
    method: "POST",
    body: JSON.stringify({ username: "admin", password: ADMIN_PASSWORD }),
  });
  if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`);
  const token = (login.body as { token: string }).token;
  const made = await json(`${url}/api/api-keys`, {
    method: "POST",
    token,
    body: JSON.stringify({ name: "gpu-bench" }),
  });
  if (made.status !== 201) throw new Error(`API key: ${made.status} ${JSON.stringify(made.body)}`);
  const key = (made.body as { key: string }).key;
  await waitFor(`${model} at the router`, timeoutMs, async () => {
    const r = await json(`${url}/v1/models`, { token: key });
    return (r.body as { data?: Array<{ id: string }> })?.data?.some((m) => m.id === model);
  });
  return { token, key };
}
