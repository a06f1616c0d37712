/**
 * node-llama-cpp engine: one model + one context with `parallel` sequences per
 * GGUF file, sequences handed out FIFO by a Pool. Only this file imports
 * node-llama-cpp (ESM-only, so it is loaded with a dynamic import).
 */
import fs from "node:fs";
import type {
  ChatWrapper,
  Token,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaModel,
} from "node-llama-cpp" with { "resolution-mode": "import" };
import { apiError, badRequest } from "../openai/errors";
import { Pool } from "./pool";
import { affinityKey } from "../routing/affinity-key";
import { chatHistory } from "./chat-history";
import { forcedCallWrapper, functionsOf, GrammarCache, isForced, tightenNumberGrammar } from "./llama-tools";
import { ToolCallStream } from "./tool-call-stream";
import type {
  ChatJob,
  CompletionJob,
  EmbeddingJob,
  Engine,
  EngineModel,
  GenerationHooks,
  GenerationResult,
  ModelFacts,
  ModelLoad,
  RerankJob,
  SamplingParams,
} from "./types";
import { Ranker } from "./llama-ranking";
import type { GpuSetting } from "../config";

type NodeLlamaCpp = typeof import("node-llama-cpp", { with: { "resolution-mode": "import" } });

export interface LlamaEngineOptions {
  modelsDir: string;
  parallel: number;
  threads: number;
  contextSize: number;
  gpu: GpuSetting;
  log?: (msg: string) => void;
}

interface LoadedModel {
  info: EngineModel;
  model: LlamaModel;
  context: LlamaContext;
  pool: Pool<LlamaContextSequence>;
  /** Resolved once: resolving a Jinja template per request costs hundreds of ms. */
  chatWrapper: ChatWrapper;
  embedding?: Promise<LlamaEmbeddingContext>;
  embedQueue: Promise<unknown>;
  /** Its ranking context, made by the first rerank request (lib/inference/llama-ranking.ts). */
  ranker: Ranker;
  /** The longest token of the vocabulary in characters (0: unknown): no token covers more of a text. */
  maxTokenChars: number;
  /** Tokens in the vocabulary (0: unknown): a logit_bias id must be one of them. */
  vocabSize: number;
}

/** A GGUF's vocabulary: its size and its longest token in characters (0, 0 when the file does not list it). */
function vocabulary(model: LlamaModel): { size: number; longest: number } {
  const meta = model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } };
  const tokens = meta.tokenizer?.ggml?.tokens;
  let max = 0;
  if (Array.isArray(tokens)) for (const t of tokens) if (typeof t === "string" && t.length > max) max = t.length;
  return { size: Array.isArray(tokens) ? tokens.length : 0, longest: max };
}

export class LlamaEngine implements Engine {
  readonly kind = "llama.cpp";
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly grammars: GrammarCache;

  private constructor(
    private readonly lib: NodeLlamaCpp,
    private readonly llama: Llama,
    private readonly opts: LlamaEngineOptions,
  ) {
    this.grammars = new GrammarCache(llama);
  }

  static async create(opts: LlamaEngineOptions): Promise<LlamaEngine> {
    const lib: NodeLlamaCpp = await import("node-llama-cpp");
    await tightenNumberGrammar();
    const llama = await lib.getLlama({
      gpu: opts.gpu,
      logLevel: lib.LlamaLogLevel.error,
      build: "never",
    });
    return new LlamaEngine(lib, llama, opts);
  }

  /** The context a model of `trainContextSize` gets: the configured size, at most what it was trained for. */
  private contextSizeFor(trainContextSize: number | undefined): number {
    return Math.min(this.opts.contextSize, trainContextSize ?? this.opts.contextSize);
  }

  async inspect(file: string): Promise<ModelFacts> {
    const info = await this.lib.readGgufFileInfo(file, { logWarnings: false });
    const insights = await this.lib.GgufInsights.from(info, this.llama);
    // all layers on the GPU when there is one (what loadModel's "auto" does when they fit)
    const gpuLayers = this.llama.gpu ? insights.totalLayers : 0;
    const model = await insights.estimateModelResourceRequirementsV2({ gpuLayers });
    const context = await insights.estimateContextResourceRequirementsV2({
      contextSize: this.contextSizeFor(insights.trainContextSize),
      modelGpuLayers: gpuLayers,
      sequences: this.opts.parallel,
    });
    const fileType = (info.metadata.general as { file_type?: number } | undefined)?.file_type;
    const name = fileType === undefined ? undefined : this.lib.GgufFileType[fileType];
    return {
      quantization: name ? name.replace(/^MOSTLY_/, "") : null,
      estimatedBytes: model.cpuRam + model.gpuVram + context.cpuRam + context.gpuVram,
    };
  }

  async defaultMemoryBudget(): Promise<number | null> {
    const free = this.llama.gpu ? (await this.llama.getVramState()).free : (await this.llama.getRamState()).free;
    return Math.floor(free * 0.9);
  }

  async loadModel(id: string, file: string): Promise<EngineModel> {
    if (this.loaded.has(id)) throw apiError(409, `The model '${id}' is loaded already.`, "model_exists");
    const model = await this.llama.loadModel({ modelPath: file });
    const context = await model
      .createContext({
        sequences: this.opts.parallel,
        contextSize: this.contextSizeFor(model.trainContextSize),
        threads: this.opts.threads,
      })
      .catch(async (err: unknown) => {
        await model.dispose();
        throw err;
      });
    const sequences = Array.from({ length: this.opts.parallel }, () => context.getSequence());
    const vocab = vocabulary(model);
    this.loaded.set(id, {
      info: {
        id,
        path: file,
        sizeBytes: fs.statSync(file).size,
        contextSize: context.contextSize,
        parallel: this.opts.parallel,
      },
      model,
      context,
      pool: new Pool(sequences),
      chatWrapper: this.lib.resolveChatWrapper(model),
      embedQueue: Promise.resolve(),
      ranker: new Ranker(model, id, context.contextSize, this.opts.threads),
      maxTokenChars: vocab.longest,
      vocabSize: vocab.size,
    });
    return this.get(id).info;
  }

  models(): EngineModel[] {
    return [...this.loaded.values()].map((m) => m.info);
  }

  load(): ModelLoad[] {
    return [...this.loaded.values()].map((m) => ({
      id: m.info.id,
      active: m.pool.inUse,
      queued: m.pool.waiting,
      capacity: m.pool.capacity,
    }));
  }

  private get(model: string): LoadedModel {
    const m = this.loaded.get(model);
    if (!m)
      throw apiError(404, `The model '${model}' is not loaded on this node.`, "model_not_found", { param: "model" });
    return m;
  }

  /**
   * Refuses a text of `chars` characters that cannot fit in `limit` tokens
   * whatever it tokenizes to (no token is longer than the vocabulary's
   * longest), before tokenizing it: tokenizing megabytes takes long, and for
   * some texts (one character repeated) minutes, on the node's event loop.
   */
  private refuseHuge(m: LoadedModel, chars: number, limit: number, what: string, param: string): void {
    if (m.maxTokenChars > 0 && chars > limit * m.maxTokenChars) {
      throw badRequest(
        `${what} is ${chars} characters: more than the ${limit} tokens that fit in this model's context of ${m.info.contextSize}.`,
        param,
        "context_length_exceeded",
      );
    }
  }

  /** OpenAI's sampling parameters as node-llama-cpp's, the same for chat and completion. */
  private sampling(m: LoadedModel, job: SamplingParams) {
    return {
      temperature: job.temperature ?? undefined,
      topP: job.topP,
      seed: job.seed,
      repeatPenalty: { frequencyPenalty: job.frequencyPenalty, presencePenalty: job.presencePenalty },
      tokenBias: job.logitBias ? this.tokenBias(m, job.logitBias) : undefined,
      customStopTriggers: job.stop.length ? job.stop : undefined,
    };
  }

  /** OpenAI's logit_bias (token id → -100..100, added to the logit; -100 bans the token) for this model's vocabulary. */
  private tokenBias(m: LoadedModel, bias: Record<string, number>) {
    const out = new this.lib.TokenBias(m.model.tokenizer);
    for (const [id, value] of Object.entries(bias)) {
      const token = Number(id);
      if (m.vocabSize > 0 && token >= m.vocabSize) {
        throw badRequest(
          `logit_bias names token ${id}; '${m.info.id}' has ${m.vocabSize} tokens (ids 0 to ${m.vocabSize - 1}).`,
          "logit_bias",
          "invalid_value",
        );
      }
      out.set(token as Token, value <= -100 ? "never" : { logit: value });
    }
    return out;
  }

  /** Checks the token budget, the same way for chat and completion. */
  private budget(m: LoadedModel, promptTokens: number, maxTokens: number | undefined, param: string): number {
    const room = m.info.contextSize - promptTokens;
    if (room <= 0) {
      throw badRequest(
        `The prompt is ${promptTokens} tokens; this model's context holds ${m.info.contextSize}.`,
        param,
        "context_length_exceeded",
      );
    }
    if (maxTokens !== undefined && maxTokens > room) {
      throw badRequest(
        `max_tokens is ${maxTokens}, but only ${room} tokens are left after the ${promptTokens}-token prompt (context ${m.info.contextSize}).`,
        "max_tokens",
        "context_length_exceeded",
      );
    }
    return maxTokens ?? room;
  }

  async chat(job: ChatJob, hooks: GenerationHooks): Promise<GenerationResult> {
    const m = this.get(job.model);
    const history = chatHistory(job.messages);
    const chars = job.messages.reduce((n, msg) => n + msg.content.length, 0);
    this.refuseHuge(m, chars, m.info.contextSize, "The prompt", "messages");
    const functions = functionsOf(job);
    const grammar = await this.grammars.forJob(job);

    // a conversation's next turn takes back the sequence whose KV cache holds its beginning
    const conversation = affinityKey(job.model, undefined, job.messages, job.cacheKey);
    const sequence = await m.pool.acquire(hooks.signal, conversation);
    const chat = new this.lib.LlamaChat({
      contextSequence: sequence,
      chatWrapper: isForced(job) ? forcedCallWrapper(this.lib, m.chatWrapper) : m.chatWrapper,
      autoDisposeSequence: false,
    });
    try {
      const rendered = chat.chatWrapper.generateContextState({ chatHistory: history, availableFunctions: functions });
      const promptTokens = rendered.contextText.tokenize(m.model.tokenizer).length;
      const maxTokens = this.budget(m, promptTokens, job.maxTokens, "messages");
      let completionTokens = 0;
      const calls = new ToolCallStream(hooks.onToolCall);
      const common = {
        maxTokens,
        ...this.sampling(m, job),
        signal: hooks.signal,
        stopOnAbortSignal: true,
        onToken: (tokens: unknown[]) => (completionTokens += tokens.length),
        onTextChunk: hooks.onText,
      };
      const res = functions
        ? await chat.generateResponse(history, {
            ...common,
            functions,
            documentFunctionParams: true,
            maxParallelFunctionCalls: job.parallelToolCalls === false ? 1 : undefined,
            onFunctionCallParamsChunk: (c) => calls.add(c.callIndex, c.functionName, c.paramsChunk),
          })
        : await chat.generateResponse(history, { ...common, grammar });
      const stop = res.metadata.stopReason;
      const made = res.functionCalls ?? [];
      const toolCalls = calls.finish(made);
      // onToken does not see the tokens of a call: count what the model wrote for each
      for (const c of made) completionTokens += this.lib.LlamaText.fromJSON(c.raw).tokenize(m.model.tokenizer).length;
      return {
        text: res.response,
        toolCalls: toolCalls.length ? toolCalls : undefined,
        finishReason: stop === "maxTokens" ? "length" : toolCalls.length ? "tool_calls" : "stop",
        promptTokens,
        completionTokens,
      };
    } finally {
      chat.dispose();
      m.pool.release(sequence, conversation);
    }
  }

  async complete(job: CompletionJob, hooks: GenerationHooks): Promise<GenerationResult> {
    const m = this.get(job.model);
    this.refuseHuge(m, job.prompt.length, m.info.contextSize, "The prompt", "prompt");
    const promptTokens = m.model.tokenize(job.prompt).length + 1;
    const maxTokens = this.budget(m, promptTokens, job.maxTokens, "prompt");
    const sequence = await m.pool.acquire(hooks.signal);
    const completion = new this.lib.LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
    try {
      let completionTokens = 0;
      const res = await completion.generateCompletionWithMeta(job.prompt, {
        maxTokens,
        ...this.sampling(m, job),
        signal: hooks.signal,
        stopOnAbortSignal: true,
        onToken: (tokens) => (completionTokens += tokens.length),
        onTextChunk: hooks.onText,
      });
      return {
        text: res.response,
        finishReason: res.metadata.stopReason === "maxTokens" ? "length" : "stop",
        promptTokens,
        completionTokens,
      };
    } finally {
      completion.dispose();
      m.pool.release(sequence);
    }
  }

  async embed(job: EmbeddingJob): Promise<{ vectors: number[][]; promptTokens: number }> {
    const m = this.get(job.model);
    // the model's context size, as chat and completion have it (not node-llama-cpp's "auto", which can be far more)
    m.embedding ??= m.model.createEmbeddingContext({ contextSize: m.info.contextSize, threads: this.opts.threads });
    const ctx = await m.embedding;
    // every input is checked before any is run: one that does not fit fails the request, as a long prompt does
    const limit = m.info.contextSize - 1;
    const inputs = job.input.map((text, i) => {
      const which = job.input.length > 1 ? `input[${i}]` : "The input";
      this.refuseHuge(m, text.length, limit, which, "input");
      const tokens = m.model.tokenize(text);
      // with the begin and end tokens the embedding context adds
      const length = ctx.calculateInputLength(tokens);
      if (length > limit) {
        throw badRequest(
          `${which} is ${length} tokens; at most ${limit} fit in this model's context of ${m.info.contextSize}.`,
          "input",
          "context_length_exceeded",
        );
      }
      return tokens;
    });
    // one embedding context per model: run requests one after another
    const run = m.embedQueue.then(async () => {
      const vectors: number[][] = [];
      let promptTokens = 0;
      for (const tokens of inputs) {
        promptTokens += tokens.length;
        const e = await ctx.getEmbeddingFor(tokens);
        vectors.push([...e.vector]);
      }
      return { vectors, promptTokens };
    });
    m.embedQueue = run.catch(() => undefined);
    return run;
  }

  rank(job: RerankJob): Promise<{ scores: number[]; promptTokens: number }> {
    return this.get(job.model).ranker.rank(job);
  }

  async gpuInfo() {
    const backend = this.llama.gpu;
    if (!backend) return { backend, devices: [], vram: null };
    const [devices, vram] = await Promise.all([this.llama.getGpuDeviceNames(), this.llama.getVramState()]);
    return { backend, devices, vram: { used: vram.used, total: vram.total } };
  }

  async unloadModel(id: string): Promise<void> {
    const m = this.get(id);
    if (m.pool.inUse > 0 || m.pool.waiting > 0) {
      throw apiError(409, `The model '${id}' is serving requests; drain the node first.`, "model_busy");
    }
    this.loaded.delete(id);
    await this.unload(m);
  }

  private async unload(m: LoadedModel): Promise<void> {
    if (m.embedding) await (await m.embedding).dispose();
    await m.ranker.dispose();
    await m.context.dispose();
    await m.model.dispose();
  }

  async dispose(): Promise<void> {
    for (const m of this.loaded.values()) await this.unload(m);
    this.loaded.clear();
    await this.llama.dispose();
  }
}
