/**
 * Inference node: serves chat, completion and embeddings from the GGUF models
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
import { LlamaEngine } from "../lib/inference/llama-engine";
import { InstantEngine } from "../lib/inference/instant-engine";
import { ModelManager } from "../lib/inference/model-manager";
import { JobRunner } from "../lib/inference/runner";
import type { ChatJob, CompletionJob, EmbeddingJob, Engine } from "../lib/inference/types";
import { embeddingList } from "../lib/openai/format";
import { apiError } from "../lib/openai/errors";
import { NvidiaSmi } from "../lib/metrics/gpu";
import { collectMachine, idleMachine } from "../lib/metrics/machine";
import { sliceSource } from "../lib/models/cluster-source";
import { downloadFile } from "../lib/models/download";
import { modelFileFor, resolveInside } from "../lib/models/names";

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

interface DownloadParams {
  taskId: string;
  /** Echoed in progress events, so that the router can tell a restarted task's events from the earlier start's. */
  attempt?: number;
  modelId: string;
  /** From the hub (or a mirror)… */
  url?: string;
  /** …or, for a model converted on the router, from that router's node ID (`models.readFile`). */
  source?: string;
  sha256: string | null;
  size: number | null;
}

type This = Service<Settings> & Vars & Methods;

const CHANGE_DEBOUNCE_MS = 200;

const InferenceService: ServiceSchema<Settings, Methods, Vars> = {
  name: "inference",

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
        const manager = this.requireManager();
        await manager.acquire(ctx.params.model);
        try {
          const r = await this.engine!.embed(ctx.params);
          return embeddingList(ctx.params.model, r.vectors, r.promptTokens);
        } finally {
          manager.release(ctx.params.model);
        }
      },
    },
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
      params: {
        taskId: { type: "string", max: 128 },
        attempt: { type: "number", integer: true, min: 1, optional: true },
        modelId: { type: "string", max: 512 },
        url: { type: "url", max: 4096, optional: true },
        source: { type: "string", max: 256, optional: true },
        sha256: { type: "string", length: 64, nullable: true, optional: true },
        size: { type: "number", integer: true, min: 0, nullable: true, optional: true },
      },
      handler(this: This, ctx: Context<DownloadParams>) {
        this.requireRunner();
        modelFileFor(ctx.params.modelId); // a bad name is refused here, before anything starts
        if (!ctx.params.url === !ctx.params.source)
          throw apiError(400, "A download needs either a url or a source node.", "invalid_request");
        if (ctx.params.source && typeof ctx.params.size !== "number")
          throw apiError(400, "A download from the router needs the size.", "invalid_request");
        if (this.requireManager().has(ctx.params.modelId)) {
          throw apiError(409, `The model '${ctx.params.modelId}' is on this node already.`, "model_exists");
        }
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
      const models = this.engine?.models() ?? [];
      const load = this.engine?.load() ?? [];
      return {
        nodeID: this.broker.nodeID,
        machineName: this.settings.node.name,
        engine: this.engine?.kind ?? "loading",
        initializing: this.runner === null,
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
        catalog: this.manager?.catalog() ?? [],
        modelMemory: {
          ...(this.manager?.limits ?? { maxLoaded: null, budgetBytes: null }),
          usedBytes: this.manager?.usedBytes() ?? 0,
        },
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

    async runDownload(this: This, p: DownloadParams, ac: AbortController) {
      const progress = (status: string, extra: Record<string, unknown> = {}) =>
        this.broker
          .broadcast("models.progress", {
            taskId: p.taskId,
            attempt: p.attempt,
            nodeID: this.broker.nodeID,
            modelId: p.modelId,
            status,
            ...extra,
          })
          .catch(() => undefined);
      void progress("downloading", { bytes: 0, total: p.size });
      try {
        const rel = modelFileFor(p.modelId);
        const source = p.source;
        const got = await downloadFile({
          url: p.url,
          source: source
            ? sliceSource(
                (offset, length) =>
                  this.broker.call("models.readFile", { id: p.modelId, offset, length }, { nodeID: source }),
                p.size ?? 0,
              )
            : undefined,
          token: this.settings.hub.token,
          destDir: this.settings.node.modelsDir,
          relPath: rel,
          sha256: p.sha256,
          size: p.size,
          signal: ac.signal,
          onProgress: (x) => void progress("downloading", { ...x }),
        });
        void progress("loading", { bytes: got.bytes, total: got.bytes });
        await this.requireManager().add(p.modelId);
        this.logger.info(`Downloaded and loaded the model ${p.modelId}`);
        this.sendHeartbeat();
        void progress("done", { bytes: got.bytes, total: got.bytes });
      } catch (err) {
        const e = err as Error & { type?: string };
        const status = ac.signal.aborted ? "cancelled" : "failed";
        this.logger.warn(`Download of ${p.modelId} ${status}: ${e.message}`);
        void progress(status, { error: e.message, code: e.type ?? null });
      }
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
        ? new InstantEngine(cfg.parallel, cfg.instantMsPerToken)
        : await LlamaEngine.create({ ...cfg, log: (m) => this.logger.warn(m) });
    const manager = new ModelManager(this.engine, {
      modelsDir: cfg.modelsDir,
      maxLoaded: cfg.maxLoadedModels,
      budgetBytes: cfg.memoryBudget,
      idleMs: cfg.modelIdleSecs === null ? null : cfg.modelIdleSecs * 1000,
      pinned: cfg.pinnedModels,
      loadAtStart: cfg.loadAtStart,
      log: (m) => this.logger.info(`models: ${m}`),
      // loads and unloads are news for the routers at once (a request may wait for one)
      onChange: () => {
        if (this.runner) this.sendHeartbeat();
      },
    });
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
    );
    const ids = this.engine.models().map((m) => m.id);
    const onDisk = manager.catalog().length;
    this.logger.info(
      `Loaded ${ids.length} of the ${onDisk} model(s) in ${cfg.modelsDir}: ${ids.join(", ") || "(none)"}` +
        (onDisk > ids.length ? " (the others load on their first request)" : ""),
    );
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
