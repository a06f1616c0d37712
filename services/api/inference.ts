/**
 * Serving inference requests: local nodes and external runtimes through the
 * balancer (with retries before the first byte), cloud models through the
 * cloud service, embeddings. What reaches the client is written by a
 * Responder: OpenAI's format, or Anthropic's for `/v1/messages`.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import type { Context, ServiceBroker } from "moleculer";
import type { RequestTrace } from "../../lib/history/record";
import { StreamAssembler } from "../../lib/history/record";
import { openStream, relaySse, sendError, sendJson, type OpenedStream, type RelayResult } from "../../lib/http/respond";
import type { ChatJob, CompletionJob } from "../../lib/inference/types";
import { apiError } from "../../lib/openai/errors";
import { embeddingToBase64 } from "../../lib/openai/format";
import { chatJob, completionJob, embeddingJob } from "../../lib/openai/jobs";
import { embeddingSchema, parseBody, type ChatBody, type CompletionBody } from "../../lib/openai/schemas";
import { cloudModel } from "../../lib/providers/index";
import type { OpenAIChatRequest } from "../../lib/providers/types";
import { affinityKey } from "../../lib/routing/affinity-key";
import { isRetryable } from "../../lib/routing/retry";
import { callUpstream } from "../../lib/runtimes/openai-upstream";
import type { ApiThis } from "../api.service";
import { routerCore } from "../../lib/core/router-core";
import type { Balancer, Selection } from "../../lib/routing/balancer";
import type { Req } from "./route-helpers";

type Kind = "chat" | "completion";

/** Writes answers in the client's API format. */
export interface Responder {
  json(res: ServerResponse, completion: unknown): void;
  relay(
    res: ServerResponse,
    opened: OpenedStream,
    idleMs: number,
    observe: (chunk: unknown) => boolean,
  ): Promise<RelayResult>;
  error(res: ServerResponse, err: unknown): number;
}

export const openAIResponder: Responder = {
  json: (res, completion) => sendJson(res, 200, completion),
  relay: relaySse,
  error: sendError,
};

/** The request body and how to answer it. */
export interface Io {
  body: unknown;
  responder: Responder;
}

/** This process's balancer (lib/core/router-core.ts): the api runs beside it, never without it. */
function balancerOf(broker: ServiceBroker): Balancer {
  const b = routerCore(broker).balancer;
  if (!b) throw apiError(503, "The balancer is not running in this process.", "service_unavailable");
  return b;
}

/**
 * Asks a node to stop generating a request (its client left, or the router
 * gave up on it). A node that cannot be told (it went away, the transporter
 * is down) is logged: it may go on generating until the request's end.
 */
export async function cancelOnNode(
  ctx: Context,
  nodeID: string,
  requestId: string,
  logger: { warn(msg: string): void },
): Promise<void> {
  try {
    await ctx.call("inference.cancel", { requestId }, { nodeID });
  } catch (err) {
    logger.warn(`could not cancel ${requestId} on node ${nodeID}: ${(err as Error)?.message ?? err}`);
  }
}

/**
 * What an external runtime is sent: the client's own validated body, so the
 * fields the router itself does not use (tools, response_format, logprobs…)
 * reach it; usage is asked for on streams (history and metrics count
 * tokens), and a completion without a length gets OpenAI's default of 16.
 */
export function runtimeBody(body: ChatBody | CompletionBody, job: ChatJob | CompletionJob): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body, stream: job.stream };
  if (job.stream) out.stream_options = { ...body.stream_options, include_usage: true };
  else delete out.stream_options;
  if (body.max_tokens == null && !("max_completion_tokens" in body && body.max_completion_tokens != null)) {
    if (job.maxTokens !== undefined) out.max_tokens = job.maxTokens;
  }
  return out;
}

/** The extra last chunk of `include_usage`: usage and no choices. */
function isUsageChunk(chunk: unknown): boolean {
  const c = chunk as { usage?: unknown; choices?: unknown[] };
  return !!c.usage && (!c.choices || c.choices.length === 0);
}

function cloudOnlyChat(model: string) {
  return apiError(
    400,
    `Cloud models serve chat completions only; '${model}' cannot be used here.`,
    "unsupported_model",
    {
      param: "model",
    },
  );
}

/**
 * Relays an opened stream in the client's format while the trace assembles
 * it for history; the usage chunk (always asked for) goes only to a client
 * that asked.
 */
async function relayRecorded(
  res: ServerResponse,
  opened: OpenedStream,
  idleMs: number,
  out: Responder,
  trace: RequestTrace,
  wantsUsage: boolean,
): Promise<RelayResult> {
  trace.firstByte();
  const assembled = new StreamAssembler();
  const relay = await out.relay(res, opened, idleMs, (chunk) => {
    assembled.add(chunk);
    return wantsUsage || !isUsageChunk(chunk);
  });
  trace.answered(assembled.body(), assembled.usage);
  return relay;
}

/** A cloud model: no balancer; the cloud service retries 429/5xx itself. */
async function cloudChat(
  this: ApiThis,
  req: Req,
  res: ServerResponse,
  body: ChatBody,
  trace: RequestTrace,
  out: Responder,
): Promise<void> {
  this.checkModelAllowed(req, body.model);
  const provider = cloudModel(body.model)!.provider.name;
  trace.kind = "cloud";
  trace.model = body.model;
  trace.stream = !!body.stream;
  trace.attempt(`cloud:${provider}`, provider);
  res.setHeader("X-Router-Node", `cloud:${provider}`);
  const clientGone = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) clientGone.abort();
  });
  const meta = {
    id: `chatcmpl-${randomUUID().replace(/-/g, "")}`,
    model: body.model,
    created: Math.floor(Date.now() / 1000),
  };
  const result = await req.$ctx.call<unknown, object>("cloud.chat", {
    request: body as unknown as OpenAIChatRequest,
    meta,
    signal: clientGone.signal,
  });
  if (!body.stream) {
    trace.firstByte();
    trace.answered(result);
    out.json(res, result);
    return;
  }
  const idleMs = this.settings.router.streamIdleTimeoutSecs * 1000;
  const opened = await openStream(result as Readable, idleMs);
  const relay = await relayRecorded(res, opened, idleMs, out, trace, !!body.stream_options?.include_usage);
  if (relay.error) throw relay.error;
}

export async function generate(this: ApiThis, req: Req, res: ServerResponse, kind: Kind, trace: RequestTrace, io: Io) {
  const ctx = req.$ctx;
  const out = io.responder;
  // the body is validated once; a cloud model takes it as it is, a node gets a job
  let job: ChatJob | CompletionJob;
  let body: ChatBody | CompletionBody;
  if (kind === "chat") {
    const chat = parseBody(this.schemas.chat, io.body);
    if (cloudModel(chat.model)) return cloudChat.call(this, req, res, chat, trace, out);
    job = chatJob(chat);
    body = chat;
  } else {
    body = parseBody(this.schemas.completion, io.body);
    job = completionJob(body);
  }
  if (cloudModel(job.model)) throw cloudOnlyChat(job.model);
  trace.model = job.model;
  trace.stream = job.stream;
  this.checkModelAllowed(req, job.model);
  // usage is always asked for (history and metrics count tokens) and passed on only when the client asked
  const clientWantsUsage = job.includeUsage;
  job.includeUsage = true;
  const { maxRetries, streamIdleTimeoutSecs } = this.settings.router;
  // external runtimes are cancelled by aborting the HTTP call; nodes by an explicit cancel
  let upstream: AbortController | undefined;
  const cancelOn = (target: Selection) =>
    target.runtime ? upstream?.abort() : void cancelOnNode(ctx, target.nodeID, job.requestId, this.logger);
  let current: Selection | null = null;
  res.once("close", () => {
    if (!res.writableFinished && current) cancelOn(current);
  });

  // hashed once, and only for the strategy that uses it
  const conversation =
    this.settings.router.balancerMode === "affinity"
      ? affinityKey(job.model, job.user, "messages" in job ? job.messages : undefined)
      : undefined;
  const balancer = balancerOf(ctx.broker);
  const tried: string[] = [];
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    let target: Selection;
    try {
      target = await balancer.select({ model: job.model, exclude: tried, affinityKey: conversation });
    } catch (err) {
      // every node that had the model failed: the client hears about the failure, not "no node"
      throw lastError ?? err;
    }
    tried.push(target.nodeID);
    trace.attempt(target.nodeID, target.machineName);
    current = target;
    upstream = target.runtime ? new AbortController() : undefined;
    res.setHeader("X-Router-Node", target.nodeID);
    let outcome: "ok" | "node_failed" | "client_error" = "node_failed";
    let ttftMs: number | undefined;
    const startedAt = performance.now();
    try {
      const result = target.runtime
        ? await callUpstream(target.runtime, kind, job, upstream!.signal, runtimeBody(body, job))
        : await ctx.call<unknown, ChatJob | CompletionJob>(`inference.${kind}`, job, { nodeID: target.nodeID });
      if (!job.stream) {
        trace.firstByte();
        trace.answered(result);
        out.json(res, result);
        outcome = "ok";
        ttftMs = performance.now() - startedAt;
        return;
      }
      // a stream counts as started once its first chunk arrives; failing before that is retried
      const opened = await openStream(result as Readable, streamIdleTimeoutSecs * 1000);
      outcome = "ok";
      ttftMs = performance.now() - startedAt;
      const relay = await relayRecorded(res, opened, streamIdleTimeoutSecs * 1000, out, trace, clientWantsUsage);
      if (relay.clientClosed || relay.error) cancelOn(target);
      if (relay.error) {
        outcome = "node_failed";
        throw relay.error; // recorded as failed; the client already has the error event
      }
      return;
    } catch (err) {
      const retry = isRetryable(err);
      outcome = retry ? "node_failed" : "client_error";
      if (!retry || attempt >= maxRetries || res.headersSent || res.destroyed) throw err;
      if (!job.stream) trace.answered(null);
      cancelOn(target);
      lastError = err;
      this.logger.warn(
        `Node ${target.nodeID} failed (${(err as Error)?.message}); retrying ${job.requestId} elsewhere`,
      );
    } finally {
      balancer.finished({ nodeID: target.nodeID, outcome, ttftMs });
    }
  }
}

export async function embeddings(this: ApiThis, req: Req, res: ServerResponse, trace: RequestTrace) {
  const ctx = req.$ctx;
  const body = parseBody(embeddingSchema, req.body);
  if (cloudModel(body.model)) throw cloudOnlyChat(body.model);
  const job = embeddingJob(body);
  trace.model = job.model;
  this.checkModelAllowed(req, job.model);
  const balancer = balancerOf(ctx.broker);
  const target = await balancer.select({ model: job.model });
  trace.attempt(target.nodeID, target.machineName);
  res.setHeader("X-Router-Node", target.nodeID);
  try {
    type Embeddings = { data: Array<{ embedding: number[] | string }> };
    const result = target.runtime
      ? ((await callUpstream(
          target.runtime,
          "embeddings",
          job,
          AbortSignal.timeout(this.settings.router.requestTimeoutSecs * 1000),
        )) as Embeddings)
      : await ctx.call<Embeddings, typeof job>("inference.embeddings", job, { nodeID: target.nodeID });
    if (body.encoding_format === "base64") {
      for (const d of result.data) d.embedding = embeddingToBase64(d.embedding as number[]);
    }
    trace.firstByte();
    // the vectors are not worth keeping: their count and usage are
    const usage = (result as { usage?: { prompt_tokens?: number } }).usage;
    trace.answered({ object: "list", embeddings: result.data.length, usage }, usage);
    sendJson(res, 200, result);
  } finally {
    balancer.finished({ nodeID: target.nodeID, outcome: "other" });
  }
}
