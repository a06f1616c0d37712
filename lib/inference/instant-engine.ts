/**
 * A simulated engine that answers at once: one "x" per requested token (16
 * when unset). For benchmarks that isolate the cost of the router and the
 * transporter from inference. It serves every `.gguf` name in the models dir
 * without loading the file.
 */
import { findModelFiles } from "./llama-engine";
import { apiError } from "../openai/errors";
import type {
  ChatJob,
  CompletionJob,
  EmbeddingJob,
  Engine,
  EngineModel,
  GenerationHooks,
  GenerationResult,
  ModelLoad,
} from "./types";

export class InstantEngine implements Engine {
  readonly kind = "instant (simulated)";
  private readonly list: EngineModel[];
  private active = 0;

  constructor(modelsDir: string, parallel: number) {
    this.list = findModelFiles(modelsDir).map(([id, path]) => ({
      id,
      path,
      sizeBytes: 0,
      contextSize: 4096,
      parallel,
    }));
  }

  models(): EngineModel[] {
    return this.list;
  }

  load(): ModelLoad[] {
    return this.list.map((m) => ({ id: m.id, active: this.active, queued: 0, capacity: m.parallel }));
  }

  private check(model: string): void {
    if (!this.list.some((m) => m.id === model))
      throw apiError(404, `The model '${model}' is not loaded on this node.`, "model_not_found", { param: "model" });
  }

  private async generate(job: ChatJob | CompletionJob, hooks: GenerationHooks): Promise<GenerationResult> {
    this.check(job.model);
    const n = job.maxTokens ?? 16;
    this.active++;
    try {
      if (hooks.onText) for (let i = 0; i < n && !hooks.signal.aborted; i++) hooks.onText("x");
      return { text: "x".repeat(n), finishReason: "length", promptTokens: 8, completionTokens: n };
    } finally {
      this.active--;
    }
  }

  chat(job: ChatJob, hooks: GenerationHooks): Promise<GenerationResult> {
    return this.generate(job, hooks);
  }

  complete(job: CompletionJob, hooks: GenerationHooks): Promise<GenerationResult> {
    return this.generate(job, hooks);
  }

  async embed(job: EmbeddingJob): Promise<{ vectors: number[][]; promptTokens: number }> {
    this.check(job.model);
    return { vectors: job.input.map(() => [0, 0, 0, 0]), promptTokens: job.input.length };
  }

  async gpuInfo() {
    return { backend: false as const, devices: [], vram: null };
  }

  async dispose(): Promise<void> {}
}
