/** What crosses NATS between the api and an inference node. */

export interface SamplingParams {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop: string[];
  seed?: number;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface JobBase extends SamplingParams {
  /** Id the api assigned; also the id of the OpenAI response, and the handle to cancel it. */
  requestId: string;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  created: number;
  /** The client's `user` field, if any. */
  user?: string;
}

export interface ChatJob extends JobBase {
  messages: ChatMessage[];
}

export interface CompletionJob extends JobBase {
  prompt: string;
}

export interface EmbeddingJob {
  model: string;
  input: string[];
}

export type FinishReason = "stop" | "length";

export interface GenerationResult {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

export interface GenerationHooks {
  signal: AbortSignal;
  /** Called with each piece of decoded text as it is produced. */
  onText?: (text: string) => void;
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

/** An inference engine: node-llama-cpp in production, anything with this shape in benches. */
export interface Engine {
  readonly kind: string;
  models(): EngineModel[];
  load(): ModelLoad[];
  chat(job: ChatJob, hooks: GenerationHooks): Promise<GenerationResult>;
  complete(job: CompletionJob, hooks: GenerationHooks): Promise<GenerationResult>;
  embed(job: EmbeddingJob): Promise<{ vectors: number[][]; promptTokens: number }>;
  gpuInfo(): Promise<{ backend: string | false; devices: string[]; vram: { used: number; total: number } | null }>;
  /** Loads a model file that arrived after start (a download). */
  addModel(id: string, file: string): Promise<EngineModel>;
  /** Unloads a model; 409 while it serves requests. */
  removeModel(id: string): Promise<void>;
  dispose(): Promise<void>;
}
