/**
 * Reranking on a node (`POST /v1/rerank`): node-llama-cpp's ranking context
 * for a reranker GGUF (one with a classification head: `cls.weight` or
 * `cls.output.weight`), made on the first request and kept while the model
 * is loaded; requests run one after another on it. A model without that head
 * is refused with a 400 naming `model`.
 */
import type { LlamaModel, LlamaRankingContext } from "node-llama-cpp";
import { badRequest } from "../openai/errors";
import type { RerankJob } from "./types";

export class Ranker {
  private context: Promise<LlamaRankingContext> | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly model: LlamaModel,
    private readonly id: string,
    private readonly contextSize: number,
    private readonly threads: number,
  ) {}

  async rank(job: RerankJob): Promise<{ scores: number[]; promptTokens: number }> {
    if (!this.model.fileInsights.supportsRanking) {
      throw badRequest(
        `The model '${this.id}' is not a reranker: it has no classification head to score documents with.`,
        "model",
        "model_not_reranker",
      );
    }
    this.context ??= this.model.createRankingContext({ contextSize: this.contextSize, threads: this.threads });
    const ctx = await this.context;
    const limit = this.contextSize - 1;
    const queryTokens = this.model.tokenize(job.query).length;
    const promptTokens = job.documents.reduce((sum, d) => sum + queryTokens + this.model.tokenize(d).length, 0);
    job.documents.forEach((d, i) => {
      const length = queryTokens + this.model.tokenize(d).length;
      if (length > limit) {
        throw badRequest(
          `The query and documents[${i}] are ${length} tokens; at most ${limit} fit in this model's context.`,
          `documents[${i}]`,
          "context_length_exceeded",
        );
      }
    });
    const run = this.queue.then(async () => ({ scores: await ctx.rankAll(job.query, job.documents), promptTokens }));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async dispose(): Promise<void> {
    if (this.context) await (await this.context.catch(() => null))?.dispose();
  }
}
