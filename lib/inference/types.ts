/** What crosses NATS between the api and an inference node. */

export interface SamplingParams {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop: string[];
  seed?: number;
  /** OpenAI's penalties (-2..2): by how often / whether a token already appeared. */
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** OpenAI's logit_bias: token id (of the model's vocabulary) → -100..100 added to its logit. */
  logitBias?: Record<string, number>;
}

/** A call the assistant made; `arguments` is the JSON text it produced. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export type ChatMessage =
  | { role: "system"; content: string }
  | { role: "user"; content: string }
  | { role: "assistant"; content: string; toolCalls?: ToolCall[] }
  | { role: "tool"; content: string; toolCallId: string };

/** A function the model may call; `parameters` is a JSON schema (lib/openai/json-schema.ts on a node). */
export interface ToolSpec {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}

/** OpenAI's `tool_choice`, with a named function as `{name}`. */
export type ToolChoice = "auto" | "none" | "required" | { name: string };

/** What the answer must be: JSON of any shape, or JSON valid against `schema`. */
export type ResponseFormat =
  { type: "json_object" } | { type: "json_schema"; name: string; schema: Record<string, unknown> };

export interface JobBase extends SamplingParams {
  /** Id the api assigned; also the id of the OpenAI response, and the handle to cancel it. */
  requestId: string;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  created: number;
  /** The client's `user` field, if any. */
  user?: string;
  /** The client's `prompt_cache_key`: turns that share it go to the node and sequence holding its cache. */
  cacheKey?: string;
}

export interface ChatJob extends JobBase {
  messages: ChatMessage[];
  tools?: ToolSpec[];
  toolChoice?: ToolChoice;
  /** false: at most one call per answer. */
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  /** How many answers (choices) to generate; at most the model's parallel slots. */
  n?: number;
}

export interface CompletionJob extends JobBase {
  prompt: string;
}

export interface EmbeddingJob {
  model: string;
  input: string[];
}

/** Scores of documents against a query, by a reranker model (`POST /v1/rerank`). */
export interface RerankJob {
  model: string;
  query: string;
  documents: string[];
}

export type FinishReason = "stop" | "length" | "tool_calls";

export interface GenerationResult {
  text: string;
  /** The calls the model made (finishReason "tool_calls"). */
  toolCalls?: ToolCall[];
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

export interface GenerationHooks {
  signal: AbortSignal;
  /** Called with each piece of decoded text as it is produced. */
  onText?: (text: string) => void;
  /** Called as a tool call's arguments are produced: its index, then pieces of its JSON text. */
  onToolCall?: (fragment: ToolCallFragment) => void;
}

/** A piece of a streamed tool call: the first of an index carries its id and name. */
export interface ToolCallFragment {
  index: number;
  id?: string;
  name?: string;
  arguments: string;
}

export interface EngineModel {
  id: string;
  path: string;
  sizeBytes: number;
  contextSize: number;
  parallel: number;
}

export interface ModelLoad {
  id: string;
  active: number;
  queued: number;
  capacity: number;
}

/** What a GGUF's header says before it is loaded. */
export interface ModelFacts {
  /** The file type (`Q4_K_M`, `F16`…), or null when the header does not say. */
  quantization: string | null;
  /** Memory the model with its contexts needs once loaded (VRAM on a GPU, RAM otherwise). */
  estimatedBytes: number;
}

export type ModelState = "available" | "loading" | "ready" | "unloading" | "failed";

/** What a node tells the routers of each model file it has (the heartbeat's `catalog`). */
export interface CatalogEntry {
  id: string;
  sizeBytes: number;
  quantization: string | null;
  /** Memory it takes loaded (node-llama-cpp's estimate); null when the file could not be read. */
  estimatedBytes: number | null;
  state: ModelState;
  /** Why it failed (state `failed`). */
  error: string | null;
  pinned: boolean;
  /** Requests running or waiting on it on this node. */
  inUse: number;
  /** Memory held now (its estimate while loaded or loading; 0 otherwise). */
  memoryBytes: number;
  /** When its last request finished, or it was loaded (ms epoch); null while not loaded. */
  lastUsedAt: number | null;
  /** How long its last load took, and how many loads since the node started. */
  loadMs: number | null;
  loads: number;
}

/** An inference engine: node-llama-cpp in production, anything with this shape in benches. */
export interface Engine {
  readonly kind: string;
  /** The models loaded now. */
  models(): EngineModel[];
  load(): ModelLoad[];
  chat(job: ChatJob, hooks: GenerationHooks): Promise<GenerationResult>;
  complete(job: CompletionJob, hooks: GenerationHooks): Promise<GenerationResult>;
  embed(job: EmbeddingJob): Promise<{ vectors: number[][]; promptTokens: number }>;
  /** Each document's relevance to the query, 0–1, in the documents' order (a reranker model's). */
  rank(job: RerankJob): Promise<{ scores: number[]; promptTokens: number }>;
  gpuInfo(): Promise<{ backend: string | false; devices: string[]; vram: { used: number; total: number } | null }>;
  /** Reads a model file's header; throws when it is not a GGUF this engine can load. */
  inspect(file: string): Promise<ModelFacts>;
  /** The memory models may take when no budget is set: what is free now less a margin (null: no limit). */
  defaultMemoryBudget(): Promise<number | null>;
  /** Loads a model file (the node's model manager decides when). */
  loadModel(id: string, file: string): Promise<EngineModel>;
  /** Unloads a model; 409 while it serves requests. */
  unloadModel(id: string): Promise<void>;
  dispose(): Promise<void>;
}
