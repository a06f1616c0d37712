/**
 * Which Moleculer serializer for the cluster, by figures: JSON (the default),
 * Notepack, MsgPack and CBOR (with `npm i --no-save cbor-x`), each on the
 * packets this cluster sends most,
 * built the way the transit builds them:
 *
 * - a stream chunk (a response packet with one chat chunk: a token);
 * - a batch of 16 chunks (what a node sends per window, lib/inference/coalesce.ts);
 * - a chat request (a request packet with a job of a few messages);
 * - a node heartbeat (an event packet, every few seconds per node).
 *
 * Per packet and serializer: the encoded size, and µs to encode and to decode
 * (the median of ROUNDS rounds of N each, after a warm-up), all in this one
 * process, one serializer after the other, so the ratios compare.
 *
 *   npm run bench:serializers          # ROUNDS=7 N=20000
 */
import os from "node:os";
import { ServiceBroker } from "moleculer";
import { chatChunk, type Meta } from "../lib/openai/format";
import { simHeartbeat } from "./sim-nodes";
import { median } from "./lib";

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const N = Number(process.env.N ?? 20_000);
const NAMES = ["JSON", "Notepack", "MsgPack", "CBOR"] as const;
/** The package each serializer needs (JSON: none). */
const CODECS: Record<(typeof NAMES)[number], string | null> = {
  JSON: null,
  Notepack: "notepack.io",
  MsgPack: "msgpack5",
  CBOR: "cbor-x",
};

const meta: Meta = {
  id: "chatcmpl-6f1c2a9e3b7d4e0f8a1b2c3d4e5f6a7b",
  created: 1796444599,
  model: "qwen2.5-7b-instruct-q4_k_m",
};
const chunk = (i: number) => chatChunk(meta, { content: i % 5 === 0 ? " the" : "ing" });
const response = (data: unknown, seq: number) => ({
  ver: "5",
  sender: "node-gpu-1",
  id: "b7c6f0e2-6a55-4a8e-9d3f-2f8f1b7c9e10",
  success: true,
  data,
  stream: true,
  seq,
  meta: {},
});

const PACKETS: Array<{ name: string; type: string; payload: unknown }> = [
  { name: "stream chunk (a token)", type: "RES", payload: response(chunk(1), 7) },
  {
    name: "batch of 16 chunks",
    type: "RES",
    payload: response(
      Array.from({ length: 16 }, (_, i) => chunk(i)),
      7,
    ),
  },
  {
    name: "chat request",
    type: "REQ",
    payload: {
      ver: "5",
      sender: "router-1",
      id: "b7c6f0e2-6a55-4a8e-9d3f-2f8f1b7c9e10",
      action: "inference.chat",
      params: {
        requestId: meta.id,
        model: meta.model,
        messages: [
          { role: "system", content: "You are a helpful assistant. Answer briefly and cite sources when you can." },
          { role: "user", content: "What is the capital of France, and what is it known for?" },
          { role: "assistant", content: "Paris. It is known for the Eiffel Tower, the Louvre and its cafés." },
          { role: "user", content: "And its population?" },
        ],
        max_tokens: 256,
        temperature: 0.7,
        stop: [],
        stream: true,
        includeUsage: true,
        created: meta.created,
      },
      meta: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
      timeout: 0,
      level: 1,
      tracing: null,
      parentID: null,
      requestID: "b7c6f0e2-6a55-4a8e-9d3f-2f8f1b7c9e10",
      caller: null,
      stream: false,
    },
  },
  {
    name: "node heartbeat",
    type: "EVENT",
    payload: {
      ver: "5",
      sender: "node-gpu-1",
      id: "b7c6f0e2-6a55-4a8e-9d3f-2f8f1b7c9e10",
      event: "llm.node.heartbeat",
      data: simHeartbeat("node-gpu-1", 3, 2),
      groups: ["registry"],
      broadcast: true,
      meta: {},
      level: 1,
      tracing: null,
      parentID: null,
      requestID: null,
      caller: null,
      needAck: null,
    },
  },
];

interface Serializer {
  serialize(obj: unknown, type: string): Buffer;
  deserialize(buf: Buffer, type: string): unknown;
}

/** µs per call of `f`, median over rounds. */
function time(f: () => unknown): number {
  for (let i = 0; i < N / 4; i++) f();
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f();
    rounds.push(Number(process.hrtime.bigint() - t0) / 1000 / N);
  }
  return median(rounds);
}

async function main() {
  const serializers = new Map<string, Serializer>();
  const missing: string[] = [];
  for (const name of NAMES) {
    // Moleculer exits the process when a serializer's codec is missing: look first (CBOR's cbor-x is
    // not a devDependency: its optional native packages keep npm ci from agreeing with the lockfile)
    const codec = CODECS[name];
    if (codec) {
      try {
        require.resolve(codec);
      } catch {
        missing.push(name);
        continue;
      }
    }
    const broker = new ServiceBroker({ logger: false, serializer: name });
    serializers.set(name, broker.serializer as unknown as Serializer);
  }
  const lines = [
    `Machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}`,
    `${ROUNDS} rounds × ${N} of each, medians; encode + decode is what one packet costs the sender and the receiver together.`,
    ...(missing.length
      ? [`Not installed, so not measured: ${missing.join(", ")} (\`npm i --no-save cbor-x\` for CBOR).`]
      : []),
    "",
    "| packet | serializer | bytes | encode µs | decode µs | encode + decode µs | vs JSON |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const p of PACKETS) {
    let json = 0;
    for (const [name, s] of serializers) {
      const buf = s.serialize(structuredClone(p.payload), p.type);
      // the round trip must give the packet back, or the figures mean nothing
      const back = s.deserialize(buf, p.type);
      if (JSON.stringify(back) !== JSON.stringify(p.payload)) throw new Error(`${name} changed the ${p.name} packet`);
      const enc = time(() => s.serialize(p.payload, p.type));
      const dec = time(() => s.deserialize(buf, p.type));
      if (name === "JSON") json = enc + dec;
      lines.push(
        `| ${p.name} | ${name} | ${buf.length} | ${enc.toFixed(2)} | ${dec.toFixed(2)} | ${(enc + dec).toFixed(2)} | ${((enc + dec) / json).toFixed(2)}× |`,
      );
      process.stderr.write(".");
    }
  }
  process.stderr.write("\n");
  console.log(lines.join("\n"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
