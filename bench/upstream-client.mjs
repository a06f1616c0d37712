// CPU per call of the ways the router can call an external runtime for a whole (non-streamed) answer:
// undici's request() with body.text() (what it used before), undici's dispatch() with a handler that
// gathers the bytes (what lib/runtimes/openai-upstream.ts uses now), and node:http with a keep-alive agent.
// Against the bench-peers harness's fake upstream, 16 calls at a time; the upstream's CPU is not counted.
// usage: npm run bench:upstream-client        (BENCH_PEERS: the harness dir; N: calls per way, 20000)
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { Agent } from "undici";

const HARNESS = process.env.BENCH_PEERS ?? "/work/shared/bench-peers";
const N = Number(process.env.N ?? 20000);
const PORT = 18000 + Math.floor(Math.random() * 1000);
const up = spawn(process.execPath, [path.join(HARNESS, "fake-upstream.mjs")], {
  env: { ...process.env, PORT: String(PORT) },
  stdio: ["ignore", "pipe", "inherit"],
});
await new Promise((r) => up.stdout.once("data", r));

const agent = new Agent({ connections: 64, keepAliveTimeout: 30000 });
const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] });
const headers = { "content-type": "application/json" };
const opts = { origin: `http://127.0.0.1:${PORT}`, path: "/v1/chat/completions", method: "POST", headers, body };

async function viaRequest() {
  const r = await agent.request({ ...opts, signal: new AbortController().signal });
  return JSON.parse(await r.body.text());
}

function viaDispatch() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    agent.dispatch(opts, {
      onRequestStart: () => undefined, // its presence selects the handler API of these methods
      onResponseData: (_c, chunk) => void chunks.push(chunk),
      onResponseEnd: () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))),
      onResponseError: (_c, err) => reject(err),
    });
  });
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 });
function viaNodeHttp() {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: PORT,
        path: opts.path,
        method: "POST",
        agent: keepAlive,
        headers: { ...headers, "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function measure(fn) {
  for (let i = 0; i < 2000; i++) await fn();
  const t0 = process.cpuUsage();
  let started = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (started++ < N) await fn();
    }),
  );
  const u = process.cpuUsage(t0);
  return (u.user + u.system) / N;
}

const ways = {
  "undici request() + body.text()": viaRequest,
  "undici dispatch()": viaDispatch,
  "node:http": viaNodeHttp,
};
const rows = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
for (let round = 0; round < 3; round++)
  for (const [name, fn] of Object.entries(ways)) rows[name].push(await measure(fn));
up.kill();
console.log(`| way | CPU µs a call (3 rounds, ${N} calls each) |\n| --- | ---: |`);
for (const [name, r] of Object.entries(rows)) console.log(`| ${name} | ${r.map((x) => x.toFixed(1)).join(" / ")} |`);
process.exit(0);
