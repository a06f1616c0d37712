/**
 * A simulated engine: one "x" per requested token (16 when unset), at once or,
 * with `msPerToken`, after that long per token while holding one of
 * `parallel` slots (a GPU of a given speed). For benchmarks that isolate the
 * router and the transporter from inference, or compare balancing strategies.
 * It "loads" a `.gguf` name of the models dir without reading the file: its
 * estimated memory is the file's size, so benches can give files sizes.
 */
import fs from "node:fs";
import { apiError, badRequest } from "../openai/errors";
import { Pool } from "./pool";
import type {
  ChatJob,
  CompletionJob,
  EmbeddingJob,
  RerankJob,
  Engine,
  EngineModel,
  GenerationHooks,
  GenerationResult,
  ModelFacts,
  ModelLoad,
} from "./types";

export class InstantEngine implements Engine {
  readonly kind = "instant (simulated)";
  private readonly list: EngineModel[] = [];
  private active = 0;
  private readonly slots: Pool<number>;

  constructor(
    parallel: number,
    private readonly msPerToken = 0,
  ) {
    this.slots = new Pool(Array.from({ length: parallel }, (_, i) => i));
  }

  models(): EngineModel[] {
    return this.list;
  }

  async inspect(file: string): Promise<ModelFacts> {
    return { quantization: null, estimatedBytes: (await fs.promises.stat(file)).size };
  }

  async defaultMemoryBudget(): Promise<number | null> {
    return null;
  }

  async loadModel(id: string, file: string): Promise<EngineModel> {
    if (this.list.some((m) => m.id === id)) throw apiError(409, `The model '${id}' is loaded already.`, "model_exists");
    const m = { id, path: file, sizeBytes: 0, contextSize: 4096, parallel: this.slots.capacity };
    this.list.push(m);
    return m;
  }

  async unloadModel(id: string): Promise<void> {
    this.check(id);
    this.list.splice(
      this.list.findIndex((m) => m.id === id),
      1,
    );
  }

  load(): ModelLoad[] {
    return this.list.map((m) => ({ id: m.id, active: this.active, queued: this.slots.waiting, capacity: m.parallel }));
  }

  private check(model: string): void {
    if (!this.list.some((m) => m.id === model))
      throw apiError(404, `The model '${model}' is not loaded on this node.`, "model_not_found", { param: "model" });
  }

  private async generate(job: ChatJob | CompletionJob, hooks: GenerationHooks): Promise<GenerationResult> {
    this.check(job.model);
    const n = job.maxTokens ?? 16;
    const slot = this.msPerToken > 0 ? await this.slots.acquire(hooks.signal) : -1;
    this.active++;
    try {
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      if (hooks.onText && this.msPerToken > 0) {
        // a stream gets its tokens one by one, as a real engine sends them
        for (let i = 0; i < n && !hooks.signal.aborted; i++) {
          await sleep(this.msPerToken);
          hooks.onText("x");
        }
      } else {
        if (this.msPerToken > 0) await sleep(n * this.msPerToken);
        if (hooks.onText) for (let i = 0; i < n && !hooks.signal.aborted; i++) hooks.onText("x");
      }
      return { text: "x".repeat(n), finishReason: "length", promptTokens: 8, completionTokens: n };
    } finally {
      this.active--;
      if (slot >= 0) this.slots.release(slot);
    }
  }

  chat(job: ChatJob, hooks: GenerationHooks): Promise<GenerationResult> {
    // its "x"s are neither calls nor JSON: refused, not silently unconstrained
    if (job.tools?.length || job.responseFormat) {
      const param = job.tools?.length ? "tools" : "response_format";
      return Promise.reject(
        badRequest(`The instant engine (benchmarks) does not serve ${param}.`, param, "unsupported_parameter"),
      );
    }
    return this.generate(job, hooks);
  }

  complete(job: CompletionJob, hooks: GenerationHooks): Promise<GenerationResult> {
    return this.generate(job, hooks);
  }

  async embed(job: EmbeddingJob): Promise<{ vectors: number[][]; promptTokens: number }> {
    this.check(job.model);
    return { vectors: job.input.map(() => [0, 0, 0, 0]), promptTokens: job.input.length };
  }

  /** A score per document from the words it shares with the query (the same every time). */
  async rank(job: RerankJob): Promise<{ scores: number[]; promptTokens: number }> {
    this.check(job.model);
    const words = new Set(job.query.toLowerCase().split(/\W+/).filter(Boolean));
    const scores = job.documents.map((d) => {
      const ws = d.toLowerCase().split(/\W+/).filter(Boolean);
      const shared = ws.filter((w) => words.has(w)).length;
      return ws.length ? shared / ws.length : 0;
    });
    return { scores, promptTokens: job.documents.length * 8 };
  }

  async gpuInfo() {
    return { backend: false as const, devices: [], vram: null };
  }

  async dispose(): Promise<void> {}
}
