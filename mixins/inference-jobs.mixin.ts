/**
 * The inference node's jobs, split out of services/inference.service.ts:
 * chat and completion (the job runner, streamed or whole), embeddings and
 * rerank (the engine, on a model held loaded meanwhile), each in spans when
 * its call carries a trace (lib/telemetry/job-spans.ts).
 */
import type { Readable } from "node:stream";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { ModelManager } from "../lib/inference/model-manager";
import type { JobRunner } from "../lib/inference/runner";
import type { ChatJob, CompletionJob, EmbeddingJob, Engine, RerankJob } from "../lib/inference/types";
import { embeddingList } from "../lib/openai/format";
import { traceJob } from "../lib/telemetry/job-spans";

interface Vars extends Provided {
  engine: Engine | null;
}

/** What the service provides (its methods). */
interface Provided {
  requireRunner(): JobRunner;
  requireManager(): ModelManager;
}

interface Methods {
  /** Runs a job in spans when it came with a trace (lib/telemetry/job-spans.ts). */
  traced<T>(
    ctx: Context<{ model: string }, { traceparent?: string }>,
    op: string,
    run: () => Promise<T> | Readable,
  ): Promise<T> | Readable;
  /** Runs `work` on `model`, held loaded meanwhile (loaded first when it is not). */
  withModel<T>(model: string, work: () => Promise<T>): Promise<T>;
}

type This = Service & Vars & Methods & Provided;

const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "inference",

  actions: {
    chat: {
      visibility: "public",
      handler(this: This, ctx: Context<ChatJob, { traceparent?: string }>) {
        return this.traced(ctx, "chat", () => this.requireRunner().chat(ctx.params));
      },
    },
    completion: {
      visibility: "public",
      handler(this: This, ctx: Context<CompletionJob, { traceparent?: string }>) {
        return this.traced(ctx, "completion", () => this.requireRunner().completion(ctx.params));
      },
    },
    embeddings: {
      visibility: "public",
      handler(this: This, ctx: Context<EmbeddingJob, { traceparent?: string }>) {
        return this.traced(ctx, "embeddings", async () => {
          const r = await this.withModel(ctx.params.model, () => this.engine!.embed(ctx.params));
          return embeddingList(ctx.params.model, r.vectors, r.promptTokens);
        });
      },
    },
    /** Each document's relevance to the query (a reranker model), in the documents' order. */
    rerank: {
      visibility: "public",
      handler(this: This, ctx: Context<RerankJob, { traceparent?: string }>) {
        return this.traced(ctx, "rerank", async () => {
          const r = await this.withModel(ctx.params.model, () => this.engine!.rank(ctx.params));
          return { scores: r.scores, usage: { prompt_tokens: r.promptTokens, total_tokens: r.promptTokens } };
        });
      },
    },
  },

  methods: {
    traced<T>(
      this: This,
      ctx: Context<{ model: string }, { traceparent?: string }>,
      op: string,
      run: () => Promise<T> | Readable,
    ): Promise<T> | Readable {
      const attributes = { "gen_ai.request.model": ctx.params.model, "llm_router.node": this.broker.nodeID };
      return traceJob(ctx.meta?.traceparent, op, attributes, run);
    },

    async withModel<T>(this: This, model: string, work: () => Promise<T>): Promise<T> {
      this.requireRunner();
      const manager = this.requireManager();
      await manager.acquire(model);
      try {
        return await work();
      } finally {
        manager.release(model);
      }
    },
  },
};

export const InferenceJobsMixin = schema as unknown as Partial<ServiceSchema>;
