/**
 * One interface for every place a request can be served: an inference node
 * over the transporter (node.ts), an external OpenAI-compatible runtime over
 * HTTP (runtime.ts), a cloud provider (cloud.ts). The api's request path is
 * the same for all: pick an upstream, open the request there, relay what
 * comes back, and on a failure before the first byte ask the one retry
 * policy (lib/routing/retry.ts) whether to try again.
 */
import type { ChatJob, CompletionJob, EmbeddingJob, RerankJob } from "../inference/types";
import type { ChatBody, CompletionBody, EmbeddingBody, RerankBody } from "../openai/schemas";
import type { NativeResponses } from "../responses/passthrough";

export type Operation = "chat" | "completion" | "embeddings" | "rerank";

/** What is asked of an upstream: the operation, the job (what a node runs) and the client's validated body. */
export interface Call {
  op: Operation;
  requestId: string;
  model: string;
  stream: boolean;
  /** What a node or runtime runs; null for a cloud model (its provider takes the body, images and all). */
  job: ChatJob | CompletionJob | EmbeddingJob | RerankJob | null;
  body: ChatBody | CompletionBody | EmbeddingBody | RerankBody;
  /**
   * A Responses API request (translated into `body` and `job`): an upstream
   * that speaks the API itself gets it as it is instead (`speaksResponses`).
   */
  native?: NativeResponses;
  /** The W3C `traceparent` of the attempt's span (tracing on): the node's spans, or the runtime's or cloud's, join its trace. */
  traceparent?: string;
}

export type UpstreamKind = "node" | "runtime" | "cloud";

export interface Upstream {
  readonly kind: UpstreamKind;
  /** What `X-Router-Node` and history name: a node ID, a runtime's ID, or `cloud:<provider>`. */
  readonly id: string;
  readonly name: string | null;
  /** How long the request waited for the model to be loaded there (ms), when it did. */
  readonly loadMs?: number;
  /** When it waited in the router's queue: how many stood ahead of it then, and for how long (ms). */
  readonly queue?: { ahead: number; waitedMs: number };
  /** Whether it takes a Responses request as it is (`openai:`, a runtime listing `/responses`). */
  readonly speaksResponses: boolean;
  /**
   * Starts the call (a Responses request's own, when it speaks the API): a finished answer (an OpenAI object), or for a streamed
   * call an object-mode stream of OpenAI chunks.
   */
  open(call: Call): Promise<unknown>;
  /**
   * Stops the call, after the client left, the relay failed or before a
   * retry: a node is told to stop generating, an HTTP upstream's request is
   * aborted (or its stream closed).
   */
  cancel(call: Call): void;
}

/** How an attempt on an upstream went, for the balancer's health and latency figures. */
export type Outcome = "ok" | "node_failed" | "client_error" | "other";

/** Where the upstreams for one request come from: the balancer (nodes, runtimes) or a cloud provider. */
export interface UpstreamSource {
  /** The next upstream to try, none of `tried`; throws (404, 503) when there is none. */
  next(tried: string[]): Promise<Upstream>;
  /** An attempt on `u` is over (its slot is free). */
  done(u: Upstream, outcome: Outcome, ttftMs?: number): void;
}

/** What an upstream needs of Moleculer: an action call (a Context, or the broker). */
export interface Caller {
  call<T = unknown>(action: string, params?: unknown, opts?: { nodeID?: string; meta?: object }): Promise<T>;
}

export interface Warner {
  warn(message: string): void;
}

/** The job of a call to a node or runtime (one is always made for them). */
export function jobOf(call: Call): ChatJob | CompletionJob | EmbeddingJob | RerankJob {
  if (!call.job) throw new Error(`${call.requestId}: a ${call.op} call without a job reached a node or runtime`);
  return call.job;
}
