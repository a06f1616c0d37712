/**
 * Inference node: serves chat, completion, embeddings and rerank (the jobs:
 * mixins/inference-jobs.mixin.ts) from the GGUF models
 * in LLM_NODE_MODELS_DIR with node-llama-cpp, loading them on demand and
 * unloading them when room is needed or they sit idle
 * (lib/inference/model-manager.ts), and broadcasts heartbeats with its
 * models (loaded, and every one on disk), load and machine metrics.
 */
import fs from "node:fs";
import type { Context, Service, ServiceSchema } from "moleculer";
import { hubConfig, nodeConfig, type HubConfig, type NodeConfig } from "../lib/config";
import type { Heartbeat } from "../lib/cluster/types";
import { ensureDemoModel } from "../lib/inference/demo-model";
import { buildHeartbeat } from "../lib/inference/heartbeat";
import { ModelManager } from "../lib/inference/model-manager";
import { createEngine, demoModelWarning, managerOptions, startSummary } from "../lib/inference/node-start";
import { JobRunner } from "../lib/inference/runner";
import type { Engine } from "../lib/inference/types";
import { InferenceJobsMixin } from "../mixins/inference-jobs.mixin";
import { apiError } from "../lib/openai/errors";
import { NvidiaSmi } from "../lib/metrics/gpu";
import { collectMachine, idleMachine } from "../lib/metrics/machine";
import { modelFileFor, resolveInside } from "../lib/models/names";
import { checkDownload, DOWNLOAD_PARAMS, runNodeDownload, type DownloadParams } from "../lib/models/node-download";

interface Settings {
  node: NodeConfig;
  /** HF_BASE_URL and this node's HF_TOKEN, for downloads. */
  hub: HubConfig;
}

interface Vars {
  engine: Engine | null;
  manager: ModelManager | null;
  runner: JobRunner | null;
  nvidiaSmi: NvidiaSmi;
  machine: Pick<Heartbeat, "cpu" | "memory" | "gpus">;
  timer: NodeJS.Timeout | null;
  pending: NodeJS.Timeout | null;
  /** Asked to disconnect: takes nothing new and leaves once what runs has finished. */
  leaving: boolean;
  /** Asked by the disconnect route (not a signal): the process exits itself once idle. */
  exitWhenIdle: boolean;
  /** While draining: called on every load change. */
  onIdle: (() => void) | null;
  /** Downloads running on this node, by task id. */
  downloads: Map<string, AbortController>;
  /** The service has stopped (possibly while `started` was still loading the models). */
  halted: boolean;
}

interface Methods {
  requireRunner(): JobRunner;
  requireManager(): ModelManager;
  heartbeat(): Heartbeat;
  sendHeartbeat(): void;
  scheduleHeartbeat(): void;
  collectMachine(): Promise<void>;
  leaveWhenIdle(): void;
  startLeaving(): void;
  drain(timeoutMs: number): Promise<void>;
  runDownload(p: DownloadParams, ac: AbortController): Promise<void>;
}

type This = Service<Settings> & Vars & Methods;

const CHANGE_DEBOUNCE_MS = 200;

const InferenceService: ServiceSchema<Settings, Methods, Vars> = {
  name: "inference",
  // the jobs (chat, completion, embeddings, rerank) are in the mixin
  mixins: [InferenceJobsMixin],

  actions: {
    /** Loads a model of this node's models dir now (unloading idle ones if room is needed); resolves once it is loaded. */
    load: {
      visibility: "public",
      params: { model: { type: "string", max: 512 }, retryFailed: { type: "boolean", optional: true } },
      async handler(this: This, ctx: Context<{ model: string; retryFailed?: boolean }>) {
        this.requireRunner();
        // an operator's load tries a model that failed before again; a request's does not
        await this.requireManager().ensure(ctx.params.model, ctx.params.retryFailed === true);
        return { model: ctx.params.model, node: this.broker.nodeID, state: "ready" };
      },
    },
    /** Unloads a model (its file stays): 409 while it serves requests, or when it is pinned. */
    unload: {
      visibility: "public",
      params: { model: { type: "string", max: 512 } },
      async handler(this: This, ctx: Context<{ model: string }>) {
        this.requireRunner();
        await this.requireManager().unload(ctx.params.model);
        return { model: ctx.params.model, node: this.broker.nodeID, state: "available" };
      },
    },
    cancel: {
      visibility: "public",
      params: { requestId: "string" },
      handler(this: This, ctx: Context<{ requestId: string }>) {
        return { cancelled: this.runner?.cancel(ctx.params.requestId) ?? false };
      },
    },
    /**
     * Fetches a model file from the hub (or a mirror) itself, or a converted
     * one from the router over the cluster, into the models dir, then loads
     * it; progress goes out as `models.progress` events. The hub token, if
     * any, is this node's own HF_TOKEN: it never crosses the transporter.
     */
    download: {
      visibility: "public",
      params: DOWNLOAD_PARAMS,
      handler(this: This, ctx: Context<DownloadParams>) {
        this.requireRunner();
        checkDownload(ctx.params, (id) => this.requireManager().has(id)); // before anything starts
        const ac = new AbortController();
        this.downloads.set(ctx.params.taskId, ac);
        void this.runDownload(ctx.params, ac).finally(() => this.downloads.delete(ctx.params.taskId));
        return { accepted: true, nodeID: this.broker.nodeID };
      },
    },
    cancelDownload: {
      visibility: "public",
      params: { taskId: { type: "string", max: 128 } },
      handler(this: This, ctx: Context<{ taskId: string }>) {
        const ac = this.downloads.get(ctx.params.taskId);
        ac?.abort(apiError(499, "The download was cancelled.", "cancelled"));
        return { cancelled: !!ac };
      },
    },
    /** Unloads a model and deletes its file. */
    removeModel: {
      visibility: "public",
      params: { modelId: { type: "string", max: 512 } },
      async handler(this: This, ctx: Context<{ modelId: string }>) {
        this.requireRunner();
        const model = { id: ctx.params.modelId };
        await this.requireManager().remove(model.id);
        const file = resolveInside(this.settings.node.modelsDir, modelFileFor(model.id));
        await fs.promises.rm(file, { force: true });
        this.logger.info(`Removed the model ${model.id}`);
        this.sendHeartbeat();
        return { removed: true, model: model.id, node: this.broker.nodeID };
      },
    },
    /** POST /api/nodes/:id/disconnect: finish what runs, then stop this node's process. */
    leave: {
      visibility: "public",
      handler(this: This) {
        const active = this.runner?.activeRequests ?? 0;
        if (!this.leaving) {
          this.logger.warn(`Asked to leave the cluster: finishing ${active} request(s), then exiting`);
          this.startLeaving();
          this.exitWhenIdle = true;
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

    requireManager(this: This): ModelManager {
      if (!this.manager) throw apiError(503, "This node is still loading its models.", "node_initializing");
      return this.manager;
    },

    heartbeat(this: This): Heartbeat {
      return buildHeartbeat({
        nodeID: this.broker.nodeID,
        machineName: this.settings.node.name,
        gpuBackend: this.settings.node.gpu,
        engineKind: this.engine?.kind ?? null,
        initializing: this.runner === null,
        models: this.engine?.models() ?? [],
        load: this.engine?.load() ?? [],
        machine: this.machine,
        tokensPerSecond: this.runner?.throughput.tokensPerSecond() ?? 0,
        catalog: this.manager?.catalog() ?? [],
        limits: this.manager?.limits ?? null,
        usedBytes: this.manager?.usedBytes() ?? 0,
        sentAt: Date.now(),
      });
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

    /** Fetches and loads the model (lib/models/node-download.ts); its progress goes out as `models.progress` events. */
    runDownload(this: This, p: DownloadParams, ac: AbortController) {
      return runNodeDownload(p, ac.signal, {
        nodeID: this.broker.nodeID,
        broadcast: (event, payload) => this.broker.broadcast(event, payload),
        call: (action, params, opts) => this.broker.call(action, params, opts),
        token: this.settings.hub.token,
        modelsDir: this.settings.node.modelsDir,
        manager: { add: (id) => this.requireManager().add(id) },
        log: this.logger,
        onAdded: () => this.sendHeartbeat(),
      });
    },

    /** Takes nothing new and tells the routers at once (a last heartbeat saying so). */
    startLeaving(this: This) {
      if (this.leaving) return;
      if (this.timer) clearInterval(this.timer);
      this.broker.broadcast("inference.heartbeat", { ...this.heartbeat(), leaving: true }).catch(() => undefined);
      this.leaving = true;
    },

    /** SIGTERM: leave, and wait up to `timeoutMs` for the generations in flight to finish. */
    async drain(this: This, timeoutMs: number) {
      this.startLeaving();
      const runner = this.runner;
      const busy = () => (runner?.activeRequests ?? 0) > 0;
      if (!busy()) return;
      this.logger.warn(`Draining: finishing ${runner!.activeRequests} request(s) (at most ${timeoutMs / 1000} s)`);
      const deadline = Date.now() + timeoutMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.onIdle = () => {
          if (busy() && Date.now() < deadline) return;
          clearTimeout(timer);
          resolve();
        };
      });
      this.onIdle = null;
    },

    /** Called on leave and on every load change while leaving. */
    leaveWhenIdle(this: This) {
      if (!this.exitWhenIdle || !this.runner || this.runner.activeRequests > 0) return;
      this.runner = null; // once
      this.logger.warn("Leaving the cluster now");
      // a moment for the last stream chunks to leave over the transporter
      setTimeout(() => void this.broker.stop().finally(() => process.exit(0)), 250);
    },

    async collectMachine(this: This) {
      this.machine = await collectMachine(this.nvidiaSmi, this.engine);
    },
  },

  created(this: This) {
    // configuration is read now, when the service is created, not when this file is imported
    this.settings = { ...this.settings, node: nodeConfig(), hub: hubConfig() };
    this.engine = null;
    this.manager = null;
    this.runner = null;
    this.nvidiaSmi = new NvidiaSmi();
    this.machine = idleMachine();
    this.timer = null;
    this.pending = null;
    this.leaving = false;
    this.exitWhenIdle = false;
    this.onIdle = null;
    this.downloads = new Map();
    this.halted = false;
  },

  async started(this: This) {
    const cfg = this.settings.node;
    if (cfg.demoModel) {
      const demo = ensureDemoModel(cfg.modelsDir);
      if (demo) this.logger.warn(demoModelWarning(cfg.modelsDir, demo));
    }
    this.sendHeartbeat();
    this.engine = await createEngine(cfg, (m) => this.logger.warn(m));
    const manager = new ModelManager(
      this.engine,
      managerOptions(cfg, {
        log: (m) => this.logger.info(`models: ${m}`),
        // loads and unloads are news for the routers at once (a request may wait for one)
        onChange: () => {
          if (this.runner) this.sendHeartbeat();
        },
      }),
    );
    this.manager = manager;
    if (!this.halted) await manager.start();
    if (this.halted) {
      // stopped while the models loaded (SIGTERM during start): `stopped` found no engine to free
      manager.stop();
      await this.engine.dispose();
      this.engine = null;
      return;
    }
    this.runner = new JobRunner(
      this.engine,
      () => {
        this.scheduleHeartbeat();
        if (this.leaving) this.leaveWhenIdle();
        this.onIdle?.();
      },
      manager,
      cfg.streamBatch,
    );
    const ids = this.engine.models().map((m) => m.id);
    this.logger.info(startSummary(cfg.modelsDir, ids, manager.catalog().length));
    await this.collectMachine();
    if (this.halted) return;
    this.sendHeartbeat();
    this.timer = setInterval(() => {
      Promise.all([
        this.collectMachine().catch((err: Error) => this.logger.warn(`metrics: ${err.message}`)),
        manager.scan().then(() => manager.sweepIdle()),
      ])
        .catch((err: Error) => this.logger.warn(`models: ${err.message}`))
        .finally(() => this.sendHeartbeat());
    }, cfg.heartbeatSecs * 1000);
  },

  async stopped(this: This) {
    this.halted = true;
    for (const ac of this.downloads.values()) ac.abort(new Error("the node is stopping"));
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    this.runner?.abortAll();
    this.manager?.stop();
    await this.engine?.dispose();
  },
};

export default InferenceService;
