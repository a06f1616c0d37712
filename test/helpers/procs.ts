/**
 * Real processes for integration tests: the router CLI started through tsx,
 * and a private nats-server on a free port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { buildTinyLlama, tinyModelOptions, type TinyModelOptions } from "../../lib/gguf/tiny-llama";
import { buildTinyReranker, tinyRerankerOptions } from "../../lib/gguf/tiny-reranker";
import { routerClient } from "./client";
import { waitFor } from "./wait";

export const ROOT = path.resolve(__dirname, "../..");

/**
 * Every child process started here, on the test file's global: at the end of
 * the file test/helpers/environment.js kills (and names) any still running.
 */
function track(name: string, child: ChildProcess): void {
  const g = globalThis as { __testChildren?: Map<ChildProcess, string> };
  const children = (g.__testChildren ??= new Map());
  children.set(child, name);
  child.once("exit", () => children.delete(child));
}

export class Proc {
  output = "";
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    track(name, child);
    const append = (b: Buffer) => {
      this.output += b.toString("utf8");
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitForOutput(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return waitFor(
      () => {
        if (!this.alive) throw new Error(`${this.name} exited:\n${this.output.slice(-3000)}`);
        return this.output.match(re);
      },
      { timeoutMs, what: `${this.name} to print ${re}` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${this.name} output ---\n${this.output.slice(-3000)}`);
    });
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.alive) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export const ADMIN_PASSWORD = "test-admin-password";

/** Environment every test process gets: 1 thread, CPU only, no demo model, its own data dir. */
export function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    LLM_ROUTER_DATA_DIR: tempDir("data"),
    LLM_ROUTER_ADMIN_PASSWORD: ADMIN_PASSWORD,
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOGLEVEL: "info",
    LLM_NODE_THREADS: "1",
    LLM_NODE_GPU: "false",
    LLM_NODE_DEMO_MODEL: "false",
    LLM_ROUTER_HOST: "127.0.0.1",
    LLM_ROUTER_PORT: "0",
    // a process stopped with work in flight drains at most this long (test/integration/lifecycle.test.ts sets more)
    LLM_SHUTDOWN_TIMEOUT_SECS: "5",
    ...extra,
  };
}

export function startCli(
  name: string,
  env: Record<string, string>,
  args: string[] = ["start"],
  nodeArgs: string[] = [],
): Proc {
  // node itself runs the CLI (tsx as a loader, not a wrapper), so a signal reaches the real process
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", path.join(ROOT, "bin/main.ts"), ...args], {
    cwd: ROOT,
    env: baseEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Proc(name, child);
}

/**
 * Runs the CLI as an operator would against the router at `url` (LLM_ROUTER_URL,
 * the test admin's password, nothing else of the test environment), to its end.
 */
export function cliAgainst(url: string, ...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "bin/main.ts"), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LLM_ROUTER_URL: url, LLM_ROUTER_PASSWORD: ADMIN_PASSWORD },
    });
    track(`llm-router ${args.join(" ")}`, child);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => resolve({ code, out }));
  });
}

/** Starts a router (or all-in-one) process and resolves its base URL once it listens. */
export async function startRouter(
  name: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<{ proc: Proc; url: string }> {
  const proc = startCli(name, env, ["start"], nodeArgs);
  try {
    const m = await proc.waitForOutput(/LLM Router listening on (http:\/\/\S+)/);
    return { proc, url: m[1] };
  } catch (err) {
    await proc.stop("SIGKILL"); // never leave a router behind a failed start
    throw err;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A private nats-server on `port`, or (without one) on a port it picks itself
 * and prints: no window between finding a free port and binding it. With
 * `jetstream`, JetStream is on, its store in `storeDir` (default: a new
 * temporary folder of its own); with `monitorPort`, its HTTP monitoring.
 */
export async function startNats(
  port?: number,
  opts: { jetstream?: boolean; storeDir?: string; monitorPort?: number } = {},
): Promise<{ proc: Proc; url: string; storeDir?: string }> {
  const bin = fs.existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
  const storeDir = opts.jetstream ? (opts.storeDir ?? tempDir("jetstream")) : undefined;
  const args = [
    ...["-a", "127.0.0.1", "-p", String(port ?? -1)],
    ...(storeDir ? ["-js", "-sd", storeDir] : []),
    // its monitoring endpoint (/varz: messages in and out), for tests that count what crosses NATS
    ...(opts.monitorPort ? ["-m", String(opts.monitorPort)] : []),
  ];
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const proc = new Proc("nats-server", child);
  const m = await proc.waitForOutput(/Listening for client connections on 127\.0\.0\.1:(\d+)/, 15_000);
  await proc.waitForOutput(/Server is ready/, 15_000);
  return { proc, url: `nats://127.0.0.1:${m[1]}`, storeDir };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `llm-router-${prefix}-`));
}

/** Writes a tiny model (see docs/tiny-gguf.md) and returns its path. */
export function writeModel(dir: string, id: string, overrides: Partial<TinyModelOptions> = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${id}.gguf`);
  fs.writeFileSync(file, buildTinyLlama(tinyModelOptions("tiny", { name: id, ...overrides })));
  return file;
}

/** Writes a tiny reranker (a ranking head: lib/gguf/tiny-reranker.ts) and returns its path. */
export function writeReranker(dir: string, id: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${id}.gguf`);
  fs.writeFileSync(file, buildTinyReranker(tinyRerankerOptions({ name: id })));
  return file;
}

/** Logs in as the test admin; returns the token. */
export async function login(url: string, username = "admin", password = ADMIN_PASSWORD): Promise<string> {
  const r = await routerClient(url).answer("POST", "/api/auth/login", { username, password });
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`);
  return (r.body as { token: string }).token;
}

/** Creates an API key as the test admin; returns the key itself. */
export async function createKey(url: string, body: Record<string, unknown> = {}): Promise<string> {
  const r = await routerClient(url, { token: await login(url) }).answer("POST", "/api/api-keys", {
    name: "test",
    ...body,
  });
  if (r.status !== 201) throw new Error(`key creation failed: ${r.status} ${r.text}`);
  return (r.body as { key: string }).key;
}
