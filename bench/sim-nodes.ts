/**
 * Simulated inference nodes for `bench/scale.ts`: many Moleculer brokers in
 * one process, each with its own NATS connection and a stub `inference`
 * service that answers `chat` at once and broadcasts heartbeats of the real
 * shape (services/inference.service.ts) every LLM_NODE_HEARTBEAT_SECS, with
 * jitter, and 200 ms after its load changes.
 *
 * Run as a child process: SIM_COUNT=50 SIM_PREFIX=sim-0 TRANSPORTER=nats://…
 * node --import tsx bench/sim-nodes.ts. It prints `READY <count> <ms>` once
 * every broker has started, and stops them all on SIGTERM.
 */
import { ServiceBroker, type Context, type ServiceSchema } from "moleculer";
import type { Heartbeat } from "../lib/cluster/types";

export const SIM_MODEL = "sim-llama-3-8b-q4";
const GIB = 2 ** 30;

/** A heartbeat as a mid-size GPU box would send it; `i` varies the figures between nodes. */
export function simHeartbeat(nodeID: string, i: number, active = 0): Heartbeat {
  const vramTotal = 24 * GIB;
  const parallel = 4;
  const models = [
    { id: SIM_MODEL, contextSize: 8192, parallel, sizeBytes: 4_920_000_000, active, queued: 0 },
    ...(i % 3 === 0
      ? [{ id: "sim-qwen-2.5-7b-q4", contextSize: 8192, parallel, sizeBytes: 4_680_000_000, active: 0, queued: 0 }]
      : []),
  ];
  return {
    nodeID,
    machineName: `gpu-box-${i}`,
    engine: "node-llama-cpp (cuda)",
    initializing: false,
    models,
    active,
    queued: 0,
    capacity: parallel * models.length,
    cpu: { usage: 5 + ((i * 7) % 40) + Math.random() * 5, cores: 16 },
    memory: { used: (20 + (i % 10)) * GIB, total: 64 * GIB },
    gpuBackend: "cuda",
    gpus: [
      {
        name: "NVIDIA L4",
        utilization: Math.round(10 + ((i * 13) % 70) + Math.random() * 10),
        vramUsed: Math.round(vramTotal * (0.3 + (i % 5) * 0.1)),
        vramTotal,
      },
    ],
    tokensPerSecond: 40 + (i % 20) * 2 + Math.random(),
    sentAt: Date.now(),
  };
}

const COMPLETION = {
  object: "chat.completion",
  model: SIM_MODEL,
  choices: [
    { index: 0, message: { role: "assistant", content: "x".repeat(16) }, logprobs: null, finish_reason: "length" },
  ],
  usage: { prompt_tokens: 3, completion_tokens: 16, total_tokens: 19 },
};

function simService(i: number, heartbeatMs: number): ServiceSchema {
  let active = 0;
  let timer: NodeJS.Timeout | undefined;
  let pending: NodeJS.Timeout | undefined;
  return {
    name: "inference",
    actions: {
      chat(this: { broker: ServiceBroker }, ctx: Context<{ requestId: string; created: number }>) {
        active++;
        const schedule = () => {
          pending ??= setTimeout(() => {
            pending = undefined;
            void this.broker.broadcast("inference.heartbeat", simHeartbeat(this.broker.nodeID, i, active));
          }, 200);
        };
        schedule();
        active--;
        return { ...COMPLETION, id: `chatcmpl-${ctx.params.requestId}`, created: ctx.params.created };
      },
      cancel: () => ({ cancelled: false }),
      status(this: { broker: ServiceBroker }) {
        return simHeartbeat(this.broker.nodeID, i, active);
      },
    },
    events: {
      "$node.connected"(this: { broker: ServiceBroker }) {
        void this.broker.broadcast("inference.heartbeat", simHeartbeat(this.broker.nodeID, i, active));
      },
    },
    started(this: { broker: ServiceBroker }) {
      const send = () => void this.broker.broadcast("inference.heartbeat", simHeartbeat(this.broker.nodeID, i, active));
      send();
      // jittered, so 200 nodes do not all beat in the same millisecond
      setTimeout(() => {
        send();
        timer = setInterval(send, heartbeatMs);
      }, Math.random() * heartbeatMs);
    },
    stopped() {
      clearTimeout(pending);
      clearInterval(timer);
    },
  };
}

async function main() {
  const count = Number(process.env.SIM_COUNT ?? 50);
  const prefix = process.env.SIM_PREFIX ?? "sim";
  const offset = Number(process.env.SIM_OFFSET ?? 0);
  const url = process.env.TRANSPORTER;
  if (!url) throw new Error("TRANSPORTER=nats://… is required");
  const heartbeatMs = Number(process.env.LLM_NODE_HEARTBEAT_SECS ?? 10) * 1000;
  const t0 = performance.now();
  const brokers = Array.from({ length: count }, (_, k) => {
    const b = new ServiceBroker({
      namespace: "llm-router",
      nodeID: `${prefix}-${k}`,
      transporter: { type: "NATS", options: { url } },
      serializer: "JSON",
      logger: false,
      heartbeatInterval: 5,
      heartbeatTimeout: 15,
    });
    b.createService(simService(offset + k, heartbeatMs));
    return b;
  });
  // a few at a time: 50 NATS connections at once on two cores would only queue
  for (let k = 0; k < brokers.length; k += 10) await Promise.all(brokers.slice(k, k + 10).map((b) => b.start()));
  console.log(`READY ${count} ${Math.round(performance.now() - t0)}`);
  const stop = async () => {
    await Promise.allSettled(brokers.map((b) => b.stop()));
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

if (process.env.SIM_COUNT) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
