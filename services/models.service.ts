/**
 * The model catalog: Hugging Face models registered by URL or `org/repo`
 * (the GGUF picked, its size and SHA-256 from the hub), distributed to chosen
 * inference nodes, which fetch the file themselves. Download tasks and their
 * progress (from `models.progress` events) are kept here.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { NodeTable } from "../lib/cluster/node-table";
import { envString } from "../lib/config";
import { apiError } from "../lib/openai/errors";
import { convertibleWeights, fileUrl, pickGguf, repoFiles, searchModels, type Hub } from "../lib/models/hub";
import { catalogId, parseRepoRef, safeRelativePath } from "../lib/models/names";
import { dbMixin } from "../mixins/db.mixin";

interface CatalogDoc {
  _id?: unknown;
  id: string;
  repo: string;
  file: string;
  size: number | null;
  sha256: string | null;
  url: string;
  registered_at: string;
}

export type TaskStatus = "queued" | "downloading" | "loading" | "done" | "failed" | "cancelled";

export interface Task {
  id: string;
  kind: "download";
  model: string;
  node: string;
  status: TaskStatus;
  bytes: number;
  total: number | null;
  rate: number;
  error: string | null;
  /** Progress events received from the node. */
  events: number;
  created_at: string;
  updated_at: string;
}

interface Vars {
  tasks: Map<string, Task>;
  searchCache: Map<string, { at: number; result: unknown }>;
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
}

type This = Service & Vars & Methods;

const SEARCH_TTL_MS = 5 * 60_000;
const DONE: TaskStatus[] = ["done", "failed", "cancelled"];

const ModelsService: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "models",
  mixins: [dbMixin("models")],

  events: {
    "models.progress"(
      this: This,
      ctx: Context<{
        taskId: string;
        status: TaskStatus;
        bytes?: number;
        total?: number | null;
        rate?: number;
        error?: string;
      }>,
    ) {
      const t = this.tasks.get(ctx.params.taskId);
      if (!t || DONE.includes(t.status)) return;
      const p = ctx.params;
      t.events++;
      t.status = p.status;
      if (p.bytes !== undefined) t.bytes = p.bytes;
      if (p.total !== undefined) t.total = p.total;
      if (p.rate !== undefined) t.rate = p.rate;
      if (p.error) t.error = p.error;
      t.updated_at = new Date().toISOString();
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
      },
      async handler(this: This, ctx: Context<{ repo: string; file?: string }>) {
        const hub = this.hub();
        const ref = parseRepoRef(ctx.params.repo, hub.baseUrl);
        const wanted = ctx.params.file ?? ref.file;
        if (wanted) safeRelativePath(wanted);
        const files = await repoFiles(hub, ref.repo);
        const gguf = pickGguf(files, wanted);
        if (!gguf) {
          if (wanted)
            throw apiError(404, `${ref.repo} has no GGUF file '${wanted}'.`, "file_not_found", { param: "file" });
          throw convertibleWeights(files)
            ? apiError(
                422,
                `${ref.repo} has weights but no GGUF. Converting needs llama.cpp's convert_hf_to_gguf.py (pip install -r llama.cpp/requirements.txt) and LLM_ROUTER_CONVERT_SCRIPT pointing to it; not supported in this version yet.`,
                "conversion_required",
                { param: "repo" },
              )
            : apiError(422, `${ref.repo} has no GGUF file and no weights to convert.`, "no_gguf", { param: "repo" });
        }
        const id = catalogId(ref.repo, gguf.path);
        const [existing] = await this.adapter.find({ query: { id } });
        if (existing) throw apiError(409, `${id} is registered already.`, "model_exists");
        const doc = await this.adapter.insert({
          id,
          repo: ref.repo,
          file: gguf.path,
          size: gguf.size,
          sha256: gguf.sha256,
          url: fileUrl(hub, ref.repo, gguf.path),
          registered_at: new Date().toISOString(),
        });
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
        if (hit && Date.now() - hit.at < SEARCH_TTL_MS) return hit.result;
        const result = { models: await searchModels(this.hub(), q) };
        this.searchCache.set(q, { at: Date.now(), result });
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
        const inference = this.table()
          .list()
          .filter((n) => !n.baseUrl && n.status === "online");
        let targets: string[];
        if (ctx.params.all) targets = inference.map((n) => n.id);
        else if (ctx.params.nodes?.length) {
          for (const id of ctx.params.nodes) {
            if (!inference.some((n) => n.id === id)) {
              throw apiError(404, `No online inference node '${id}'.`, "node_not_found", { param: "nodes" });
            }
          }
          targets = [...new Set(ctx.params.nodes)];
        } else throw apiError(400, 'Say where: {"all": true} or {"nodes": ["<node id>", …]}.', "missing_target");
        if (!targets.length) throw apiError(409, "No inference node is online.", "no_available_node");
        const tasks: Task[] = [];
        for (const node of targets) {
          const now = new Date().toISOString();
          const task: Task = {
            id: `task-${randomUUID()}`,
            kind: "download",
            model: doc.id,
            node,
            status: "queued",
            bytes: 0,
            total: doc.size,
            rate: 0,
            error: null,
            events: 0,
            created_at: now,
            updated_at: now,
          };
          this.tasks.set(task.id, task);
          tasks.push(task);
          try {
            await ctx.call(
              "inference.download",
              { taskId: task.id, modelId: doc.id, url: doc.url, sha256: doc.sha256, size: doc.size },
              { nodeID: node },
            );
          } catch (err) {
            task.status = "failed";
            task.error = (err as Error).message;
          }
        }
        return { tasks };
      },
    },
    tasks: {
      visibility: "public",
      handler(this: This) {
        return [...this.tasks.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
      },
    },
    task: {
      visibility: "public",
      params: { id: { type: "string", max: 128 } },
      handler(this: This, ctx: Context<{ id: string }>) {
        const t = this.tasks.get(ctx.params.id);
        if (!t) throw apiError(404, `No task '${ctx.params.id}'.`, "task_not_found");
        return t;
      },
    },
    cancelTask: {
      visibility: "public",
      params: { id: { type: "string", max: 128 } },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const t = this.tasks.get(ctx.params.id);
        if (!t) throw apiError(404, `No task '${ctx.params.id}'.`, "task_not_found");
        if (DONE.includes(t.status)) throw apiError(409, `The task is ${t.status} already.`, "task_finished");
        await ctx.call("inference.cancelDownload", { taskId: t.id }, { nodeID: t.node }).catch(() => undefined);
        t.status = "cancelled";
        t.updated_at = new Date().toISOString();
        return t;
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
      return {
        baseUrl: envString("HF_BASE_URL", "https://huggingface.co").replace(/\/+$/, ""),
        token: envString("HF_TOKEN", "") || undefined,
      };
    },
    table(this: This): NodeTable {
      const registry = this.broker.getLocalService("registry") as unknown as { table: NodeTable } | undefined;
      if (!registry) throw apiError(503, "The models service runs beside the registry.", "registry_missing");
      return registry.table;
    },
    async entry(this: This, id: string) {
      const [doc] = await this.adapter.find({ query: { id } });
      if (!doc) throw apiError(404, `No model '${id}' in the catalog.`, "model_not_found", { param: "id" });
      return doc;
    },
    view(this: This, d: CatalogDoc) {
      const nodes = this.table()
        .list()
        .filter((n) => n.status !== "offline" && n.models.some((m) => m.id === d.id))
        .map((n) => n.id);
      const { _id: _omit, ...rest } = d;
      void _omit;
      return { ...rest, nodes };
    },
  },

  created(this: This) {
    this.tasks = new Map();
    this.searchCache = new Map();
  },
};

export default ModelsService;
