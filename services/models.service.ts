/**
 * The model catalog: Hugging Face models registered by URL or `org/repo`
 * (the GGUF picked, its size and SHA-256 from the hub), distributed to chosen
 * inference nodes, which fetch the file themselves. Download tasks and their
 * progress (from `models.progress` events) are kept here.
 */
import fs from "node:fs";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { DbAdapter } from "moleculer-db";
import type { NodeTable } from "../lib/cluster/node-table";
import { routerCore } from "../lib/core/router-core";
import { loadTarget, unloadTargets } from "../lib/models/lifecycle";
import { hubConfig } from "../lib/config";
import { apiError } from "../lib/openai/errors";
import { readSlice, READ_SLICE_BYTES } from "../lib/models/cluster-source";
import { ConversionQueue, convertedFile } from "../lib/models/conversions";
import { conversionId, convertConfig, OUTTYPES, requireScript } from "../lib/models/convert";
import {
  catalogView,
  convertedEntry,
  downloadRequest,
  hubEntry,
  registration,
  type CatalogDoc,
} from "../lib/models/catalog";
import { repoFiles, searchModels, type Hub, type HubModel } from "../lib/models/hub";
import { catalogId, parseRepoRef, safeRelativePath } from "../lib/models/names";
import { SearchCache } from "../lib/models/search-cache";
import {
  downloadTargets,
  isFinal,
  newTask,
  progressPatch,
  settleQuiet,
  TaskStore,
  type DownloadProgress,
  type Task,
} from "../lib/models/tasks";
import { dbMixin, openCollection } from "../mixins/db.mixin";

export type { Task, TaskStatus } from "../lib/models/tasks";

interface Vars {
  store: TaskStore;
  tasksDb: DbAdapter | null;
  conversions: ConversionQueue;
  searchCache: SearchCache<{ models: HubModel[] }>;
  reviewTimer: NodeJS.Timeout | null;
  adapter: {
    find(q: { query?: object; sort?: string[] }): Promise<CatalogDoc[]>;
    insert(doc: CatalogDoc): Promise<CatalogDoc>;
    removeMany(query: object): Promise<number>;
  };
}

interface Methods {
  hub(): Hub;
  table(): NodeTable;
  entry(id: string): Promise<CatalogDoc>;
  view(doc: CatalogDoc): unknown;
  task(id: string): Task;
  startDownload(ctx: Context, task: Task, doc: CatalogDoc): Promise<void>;
  startConversion(repo: string, outtype: string): Promise<unknown>;
  reviewDownloads(now?: number): void;
}

type This = Service & Vars & Methods;

const REVIEW_EVERY_MS = 30_000;

const ModelsService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "models",
  mixins: [dbMixin("models")],

  events: {
    "models.progress"(this: This, ctx: Context<DownloadProgress & { taskId: string }>) {
      const t = this.store?.get(ctx.params.taskId);
      const patch = t && progressPatch(t, ctx.params);
      if (t && patch) this.store.update(t, patch, patch.status === t.status);
    },
  },

  actions: {
    /** GET /api/models: the catalog, each with the nodes that have it loaded. */
    list: {
      visibility: "public",
      async handler(this: This) {
        return (await this.adapter.find({ sort: ["id"] })).map((d) => this.view(d));
      },
    },
    register: {
      visibility: "public",
      params: {
        repo: { type: "string", min: 3, max: 512 },
        file: { type: "string", max: 512, optional: true },
        outtype: { type: "enum", values: OUTTYPES, optional: true },
      },
      async handler(this: This, ctx: Context<{ repo: string; file?: string; outtype?: string }>) {
        const hub = this.hub();
        const ref = parseRepoRef(ctx.params.repo, hub.baseUrl);
        const wanted = ctx.params.file ?? ref.file;
        if (wanted) safeRelativePath(wanted);
        const what = registration(ref.repo, await repoFiles(hub, ref.repo), wanted);
        if ("convert" in what) return this.startConversion(ref.repo, ctx.params.outtype ?? convertConfig().outtype);
        const id = catalogId(ref.repo, what.gguf.path);
        const [existing] = await this.adapter.find({ query: { id } });
        if (existing) throw apiError(409, `${id} is registered already.`, "model_exists");
        const doc = await this.adapter.insert(hubEntry(hub, id, ref.repo, what.gguf));
        this.logger.info(`Registered the model ${id}`);
        return this.view(doc);
      },
    },
    remove: {
      visibility: "public",
      params: { id: { type: "string", max: 512 } },
      async handler(this: This, ctx: Context<{ id: string }>) {
        await this.entry(ctx.params.id);
        await this.adapter.removeMany({ id: ctx.params.id });
        return { deleted: true, id: ctx.params.id };
      },
    },
    /** GET /api/models/available?search=: GGUF repos on the hub, cached for a few minutes. */
    available: {
      visibility: "public",
      params: { search: { type: "string", max: 128, optional: true } },
      async handler(this: This, ctx: Context<{ search?: string }>) {
        const q = (ctx.params.search ?? "").trim();
        const hit = this.searchCache.get(q);
        if (hit) return hit;
        const result = { models: await searchModels(this.hub(), q) };
        this.searchCache.set(q, result); // bounded: the oldest search goes first
        return result;
      },
    },
    /** POST /api/models/:id/download {all: true} | {nodes: [...]}: one task per node. */
    download: {
      visibility: "public",
      params: {
        id: { type: "string", max: 512 },
        all: { type: "boolean", optional: true },
        nodes: { type: "array", items: { type: "string", max: 256 }, max: 256, optional: true },
      },
      async handler(this: This, ctx: Context<{ id: string; all?: boolean; nodes?: string[] }>) {
        const doc = await this.entry(ctx.params.id);
        const online = this.table()
          .list()
          .filter((n) => !n.baseUrl && n.status === "online")
          .map((n) => n.id);
        const targets = downloadTargets(online, ctx.params);
        if (doc.source === "converted" && !fs.existsSync(convertedFile(doc.id)))
          throw apiError(409, `The converted file of ${doc.id} is not on this router.`, "file_missing");
        const tasks: Task[] = [];
        for (const node of targets) {
          const task = this.store.add(newTask({ kind: "download", model: doc.id, node, total: doc.size }));
          tasks.push(task);
          await this.startDownload(ctx, task, doc);
        }
        return { tasks };
      },
    },
    tasks: {
      visibility: "public",
      handler(this: This) {
        return this.store.list();
      },
    },
    task: {
      visibility: "public",
      params: { id: { type: "string", max: 128 } },
      handler(this: This, ctx: Context<{ id: string }>) {
        return this.task(ctx.params.id);
      },
    },
    cancelTask: {
      visibility: "public",
      params: { id: { type: "string", max: 128 } },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const t = this.task(ctx.params.id);
        if (isFinal(t)) throw apiError(409, `The task is ${t.status} already.`, "task_finished");
        if (t.kind === "convert") this.conversions.cancel(t);
        else {
          await ctx.call("inference.cancelDownload", { taskId: t.id }, { nodeID: t.node }).catch((err: Error) => {
            this.logger.warn(`could not tell node ${t.node} to stop download ${t.id}: ${err.message}`);
          });
        }
        return this.store.update(t, { status: "cancelled", rate: 0 });
      },
    },
    /** POST /api/tasks/:id/restart: a failed or cancelled task starts again (its id stays). */
    restartTask: {
      visibility: "public",
      params: { id: { type: "string", max: 128 } },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const t = this.task(ctx.params.id);
        if (t.status !== "failed" && t.status !== "cancelled")
          throw apiError(
            409,
            `Only a failed or cancelled task can be restarted; this one is ${t.status}.`,
            "task_active",
          );
        const [existing] = await this.adapter.find({ query: { id: t.model } });
        const reset = { status: "queued" as const, attempt: t.attempt + 1, error: null, bytes: 0, rate: 0, events: 0 };
        if (t.kind === "convert") {
          if (existing) throw apiError(409, `${t.model} is registered already.`, "model_exists");
          this.conversions.enqueue(this.store.update(t, { ...reset, total: null, detail: null }));
        } else {
          const doc = await this.entry(t.model);
          const n = this.table().get(t.node);
          if (!n || n.baseUrl || n.status !== "online")
            throw apiError(409, `The node '${t.node}' is not online.`, "node_not_found");
          await this.startDownload(ctx, this.store.update(t, { ...reset, total: doc.size }), doc);
        }
        return t;
      },
    },
    /**
     * A slice of a converted model's file, for a node downloading it: an
     * object-mode stream of base64 strings (see lib/models/cluster-source.ts).
     */
    readFile: {
      visibility: "public",
      params: {
        id: { type: "string", max: 512 },
        offset: { type: "number", integer: true, min: 0 },
        length: { type: "number", integer: true, min: 1, max: READ_SLICE_BYTES },
      },
      async handler(this: This, ctx: Context<{ id: string; offset: number; length: number }>) {
        const doc = await this.entry(ctx.params.id);
        if (doc.source !== "converted") throw apiError(400, `${doc.id} is downloaded from the hub.`, "not_converted");
        const file = convertedFile(doc.id);
        const size = (await fs.promises.stat(file).catch(() => null))?.size;
        if (size === undefined) throw apiError(404, `The converted file of ${doc.id} is missing.`, "file_missing");
        const { offset, length } = ctx.params;
        if (offset >= size) throw apiError(416, `${doc.id} has ${size} bytes.`, "range_not_satisfiable");
        return readSlice(file, offset, Math.min(length, size - offset));
      },
    },
    /** POST /api/models/:id/load: loaded on the node named, or the one that can take it soonest; resolves once loaded. */
    load: {
      visibility: "public",
      params: { id: { type: "string", max: 512 }, node: { type: "string", max: 256, optional: true } },
      async handler(this: This, ctx: Context<{ id: string; node?: string }>) {
        const target = loadTarget(this.table(), ctx.params.id, ctx.params.node);
        if (!target.loaded) {
          await ctx.call(
            "inference.load",
            { model: ctx.params.id, retryFailed: true },
            { nodeID: target.node, timeout: 15 * 60_000 },
          );
        }
        return { model: ctx.params.id, node: target.node, state: "ready", loaded_now: !target.loaded };
      },
    },
    /** POST /api/models/:id/unload: unloaded from the node named, or from every node that has it loaded (the file stays). */
    unload: {
      visibility: "public",
      params: { id: { type: "string", max: 512 }, node: { type: "string", max: 256, optional: true } },
      async handler(this: This, ctx: Context<{ id: string; node?: string }>) {
        const nodes = unloadTargets(this.table(), ctx.params.id, ctx.params.node);
        for (const nodeID of nodes) await ctx.call("inference.unload", { model: ctx.params.id }, { nodeID });
        return { model: ctx.params.id, nodes, state: "available" };
      },
    },
    /** DELETE /api/nodes/:id/models/:model: the node unloads the model and deletes its file. */
    removeFromNode: {
      visibility: "public",
      params: { node: { type: "string", max: 256 }, model: { type: "string", max: 512 } },
      async handler(this: This, ctx: Context<{ node: string; model: string }>) {
        const n = this.table().get(ctx.params.node);
        if (!n || n.baseUrl || n.status !== "online") {
          throw apiError(404, `No online inference node '${ctx.params.node}'.`, "node_not_found");
        }
        return ctx.call("inference.removeModel", { modelId: ctx.params.model }, { nodeID: ctx.params.node });
      },
    },
  },

  methods: {
    hub(this: This): Hub {
      return hubConfig();
    },
    table(this: This): NodeTable {
      const core = routerCore(this.broker);
      if (!core.registry) throw apiError(503, "The models service runs beside the registry.", "registry_missing");
      return core.table;
    },
    task(this: This, id: string) {
      const t = this.store.get(id);
      if (!t) throw apiError(404, `No task '${id}'.`, "task_not_found");
      return t;
    },
    /** Asks the node to fetch the model: from the hub, or a converted one from this router. */
    async startDownload(this: This, ctx: Context, task: Task, doc: CatalogDoc) {
      try {
        await ctx.call("inference.download", downloadRequest(task, doc, this.broker.nodeID), { nodeID: task.node });
      } catch (err) {
        this.store.update(task, { status: "failed", error: (err as Error).message });
      }
    },
    async startConversion(this: This, repo: string, outtype: string) {
      requireScript(convertConfig(), repo);
      const id = conversionId(repo, outtype);
      const [existing] = await this.adapter.find({ query: { id } });
      if (existing) throw apiError(409, `${id} is registered already.`, "model_exists");
      const running = this.store.list().find((t) => t.kind === "convert" && t.model === id && !isFinal(t));
      if (running) throw apiError(409, `${repo} is being converted already (${running.id}).`, "conversion_running");
      const task = this.store.add(newTask({ kind: "convert", model: id, node: this.broker.nodeID, repo, outtype }));
      this.conversions.enqueue(task);
      this.logger.info(`Queued the conversion of ${repo} into ${id}`);
      return { id, repo, source: "converted", task };
    },
    async entry(this: This, id: string) {
      const [doc] = await this.adapter.find({ query: { id } });
      if (!doc) throw apiError(404, `No model '${id}' in the catalog.`, "model_not_found", { param: "id" });
      return doc;
    },
    /** Settles downloads gone quiet (lib/models/tasks.ts#settleQuiet) by what their node serves now. */
    reviewDownloads(this: This, now = Date.now()) {
      const serves = (nodeId: string, model: string) => {
        const node = this.table().get(nodeId);
        return node?.status === "online" && node.models.some((m) => m.id === model);
      };
      for (const t of this.store.list()) {
        const patch = settleQuiet(t, now, serves);
        if (patch) this.store.update(t, patch);
      }
    },

    view(this: This, d: CatalogDoc) {
      return catalogView(d, this.table().list());
    },
  },

  created(this: This) {
    this.searchCache = new SearchCache();
    this.tasksDb = null;
    this.reviewTimer = null;
  },

  async started(this: This) {
    this.tasksDb = await openCollection("model_tasks", this);
    this.store = new TaskStore(this.tasksDb, this.logger);
    this.conversions = new ConversionQueue({
      store: this.store,
      hub: () => this.hub(),
      log: this.logger,
      register: async (task, result) => {
        const [existing] = await this.adapter.find({ query: { id: task.model } });
        if (existing) throw apiError(409, `${task.model} is registered already.`, "model_exists");
        await this.adapter.insert(convertedEntry(task, result));
      },
    });
    const loaded = await this.store.load();
    // downloads run on the nodes: a quiet one is settled by what its node reports (reviewDownloads)
    this.reviewTimer = setInterval(() => this.reviewDownloads(), REVIEW_EVERY_MS);
    const unfinished = loaded.filter((t) => t.kind === "convert" && !isFinal(t));
    for (const t of unfinished.reverse()) {
      this.logger.info(`Conversion of ${t.repo} was not finished: queued again (${t.id})`);
      this.conversions.enqueue(this.store.update(t, { status: "queued", node: this.broker.nodeID, rate: 0 }));
    }
  },

  async stopped(this: This) {
    if (this.reviewTimer) clearInterval(this.reviewTimer);
    await this.conversions?.stop();
    await this.store?.flush();
    await this.tasksDb?.disconnect();
  },
};

export default ModelsService;
