/**
 * Inference node: serves chat, completion and embeddings from the GGUF models
 * in LLM_NODE_MODELS_DIR with node-llama-cpp, and broadcasts heartbeats with
 * its models, load and machine metrics.
 */
import os from "node:os";
import type { Context, Service, ServiceSchema } from "moleculer";
import si from "systeminformation";
import { nodeConfig, type NodeConfig } from "../lib/config";
import type { Heartbeat } from "../lib/cluster/types";
import { ensureDemoModel } from "../lib/inference/demo-model";
import { LlamaEngine } from "../lib/inference/llama-engine";
import { InstantEngine } from "../lib/inference/instant-engine";
import { JobRunner } from "../lib/inference/runner";
import type { ChatJob, CompletionJob, EmbeddingJob, Engine } from "../lib/inference/types";
import { embeddingList } from "../lib/openai/format";
import { apiError } from "../lib/openai/errors";
import { NvidiaSmi } from "../lib/metrics/gpu";

interface Settings {
  node: NodeConfig;
}

interface Vars {
  engine: Engine | null;
  runner: JobRunner | null;
  nvidiaSmi: NvidiaSmi;
  machine: Pick<Heartbeat, "cpu" | "memory" | "gpus">;
  timer: NodeJS.Timeout | null;
  pending: NodeJS.Timeout | null;
  /** Asked to disconnect: takes nothing new and leaves once what runs has finished. */
  leaving: boolean;
}

interface Methods {
  requireRunner(): JobRunner;
  heartbeat(): Heartbeat;
  sendHeartbeat(): void;
  scheduleHeartbeat(): void;
  collectMachine(): Promise<void>;
  leaveWhenIdle(): void;
}

type This = Service<Settings> & Vars & Methods;

const CHANGE_DEBOUNCE_MS = 200;

const InferenceService: ServiceSchema<Settings, Methods, Vars> = {
  name: "inference",

  settings: {
    node: nodeConfig(),
  },

  actions: {
    chat: {
      visibility: "public",
      handler(this: This, ctx: Context<ChatJob>) {
        return this.requireRunner().chat(ctx.params);
      },
    },
    completion: {
      visibility: "public",
      handler(this: This, ctx: Context<CompletionJob>) {
        return this.requireRunner().completion(ctx.params);
      },
    },
    embeddings: {
      visibility: "public",
      async handler(this: This, ctx: Context<EmbeddingJob>) {
        this.requireRunner();
        const r = await this.engine!.embed(ctx.params);
        return embeddingList(ctx.params.model, r.vectors, r.promptTokens);
      },
    },
    cancel: {
      visibility: "public",
      params: { requestId: "string" },
      handler(this: This, ctx: Context<{ requestId: string }>) {
        return { cancelled: this.runner?.cancel(ctx.params.requestId) ?? false };
      },
    },
    /** POST /api/nodes/:id/disconnect: finish what runs, then stop this node's process. */
    leave: {
      visibility: "public",
      handler(this: This) {
        const active = this.runner?.activeRequests ?? 0;
        if (!this.leaving) {
          this.leaving = true;
          this.logger.warn(`Asked to leave the cluster: finishing ${active} request(s), then exiting`);
          if (this.timer) clearInterval(this.timer);
          setImmediate(() => this.leaveWhenIdle());
        }
        return { leaving: true, active_requests: active };
      },
    },
    status: {
      visibility: "public",
      handler(this: This) {
        return this.heartbeat();
      },
    },
  },

  events: {
    // a router joined: tell it about this node at once instead of at the next tick
    "$node.connected"(this: This) {
      this.sendHeartbeat();
    },
  },

  methods: {
    requireRunner(this: This): JobRunner {
      if (this.leaving) throw apiError(503, "This node is leaving the cluster.", "node_leaving");
      if (!this.runner) {
        throw apiError(503, "This node is still loading its models.", "node_initializing");
      }
      return this.runner;
    },

    heartbeat(this: This): Heartbeat {
      const models = this.engine?.models() ?? [];
      const load = this.engine?.load() ?? [];
      return {
        nodeID: this.broker.nodeID,
        machineName: this.settings.node.name,
        engine: this.engine?.kind ?? "loading",
        initializing: this.engine === null,
        models: models.map((m) => {
          const l = load.find((x) => x.id === m.id);
          return {
            id: m.id,
            contextSize: m.contextSize,
            parallel: m.parallel,
            sizeBytes: m.sizeBytes,
            active: l?.active ?? 0,
            queued: l?.queued ?? 0,
          };
        }),
        active: load.reduce((a, l) => a + l.active, 0),
        queued: load.reduce((a, l) => a + l.queued, 0),
        capacity: load.reduce((a, l) => a + l.capacity, 0),
        ...this.machine,
        gpuBackend: this.settings.node.gpu,
        tokensPerSecond: this.runner?.throughput.tokensPerSecond() ?? 0,
        sentAt: Date.now(),
      };
    },

    sendHeartbeat(this: This) {
      if (this.leaving) return;
      this.broker.broadcast("inference.heartbeat", this.heartbeat()).catch((err: Error) => {
        this.logger.warn(`heartbeat not sent: ${err.message}`);
      });
    },

    /** Load changed: send a heartbeat soon, once for a burst of changes. */
    scheduleHeartbeat(this: This) {
      if (this.pending) return;
      this.pending = setTimeout(() => {
        this.pending = null;
        this.sendHeartbeat();
      }, CHANGE_DEBOUNCE_MS);
    },

    /** Called on leave and on every load change while leaving. */
    leaveWhenIdle(this: This) {
      if (!this.leaving || !this.runner || this.runner.activeRequests > 0) return;
      this.runner = null; // once
      this.logger.warn("Leaving the cluster now");
      // a moment for the last stream chunks to leave over the transporter
      setTimeout(() => void this.broker.stop().finally(() => process.exit(0)), 250);
    },

    async collectMachine(this: This) {
      const [load, mem, smi, engineGpu] = await Promise.all([
        si.currentLoad(),
        si.mem(),
        this.nvidiaSmi.query(),
        this.engine ? this.engine.gpuInfo() : Promise.resolve(null),
      ]);
      const gpus =
        smi ??
        (engineGpu?.vram
          ? engineGpu.devices.map((name, i) => ({
              name,
              utilization: null,
              vramUsed: i === 0 ? engineGpu.vram!.used : 0,
              vramTotal: i === 0 ? engineGpu.vram!.total : 0,
            }))
          : []);
      this.machine = {
        cpu: { usage: Math.round(load.currentLoad * 10) / 10, cores: os.cpus().length },
        memory: { used: mem.active, total: mem.total },
        gpus,
      };
    },
  },

  created(this: This) {
    this.engine = null;
    this.runner = null;
    this.nvidiaSmi = new NvidiaSmi();
    this.machine = { cpu: { usage: 0, cores: os.cpus().length }, memory: { used: 0, total: os.totalmem() }, gpus: [] };
    this.timer = null;
    this.pending = null;
    this.leaving = false;
  },

  async started(this: This) {
    const cfg = this.settings.node;
    if (cfg.demoModel) {
      const demo = ensureDemoModel(cfg.modelsDir);
      if (demo) {
        this.logger.warn(
          `No model in ${cfg.modelsDir}: wrote a RANDOM-WEIGHT DEMO model (${demo}). ` +
            "Its output is noise. Put a real .gguf in LLM_NODE_MODELS_DIR (or set LLM_NODE_DEMO_MODEL=false).",
        );
      }
    }
    this.sendHeartbeat();
    this.engine =
      cfg.engine === "instant"
        ? new InstantEngine(cfg.modelsDir, cfg.parallel, cfg.instantMsPerToken)
        : await LlamaEngine.create({ ...cfg, log: (m) => this.logger.warn(m) });
    this.runner = new JobRunner(this.engine, () => {
      this.scheduleHeartbeat();
      if (this.leaving) this.leaveWhenIdle();
    });
    const ids = this.engine.models().map((m) => m.id);
    this.logger.info(`Loaded ${ids.length} model(s) from ${cfg.modelsDir}: ${ids.join(", ") || "(none)"}`);
    await this.collectMachine();
    this.sendHeartbeat();
    this.timer = setInterval(() => {
      this.collectMachine()
        .catch((err: Error) => this.logger.warn(`metrics: ${err.message}`))
        .finally(() => this.sendHeartbeat());
    }, cfg.heartbeatSecs * 1000);
  },

  async stopped(this: This) {
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    this.runner?.abortAll();
    await this.engine?.dispose();
  },
};

export default InferenceService;
