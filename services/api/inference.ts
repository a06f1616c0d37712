/**
 * Serving inference requests, one path for every upstream: validate → pick
 * (lib/upstreams/sources.ts: the balancer for nodes and runtimes, the
 * provider for a cloud model) → open → relay, with the one retry policy
 * (lib/routing/retry.ts) before the first byte. The model asked for may be
 * an alias, and may have fallbacks (services/aliases.service.ts): the
 * request goes to each model of its chain in turn until one takes it, before
 * the first byte only; the answer names the model asked for, `X-Router-Model`
 * the one that answered. What reaches the client is written by a Responder:
 * OpenAI's format, or Anthropic's for `/v1/messages`.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { ServiceBroker } from "moleculer";
import { routerCore } from "../../lib/core/router-core";
import type { RequestTrace } from "../../lib/history/record";
import { StreamAssembler } from "../../lib/history/record";
import { changed } from "../../lib/http/raw-json";
import { openStream, sendJson, type ChunkSource } from "../../lib/http/respond";
import { apiError } from "../../lib/openai/errors";
import { embeddingToBase64 } from "../../lib/openai/format";
import { chatJob, completionJob, embeddingJob } from "../../lib/openai/jobs";
import { embeddingSchema, parseBody, parseRequest, type ChatBody, type CompletionBody } from "../../lib/openai/schemas";
import { cloudModel } from "../../lib/providers/index";
import { affinityKey } from "../../lib/routing/affinity-key";
import type { Balancer } from "../../lib/routing/balancer";
import type { NativeResponses } from "../../lib/responses/passthrough";
import type { Producer } from "../../lib/responses/store";
import { isRetryable, retryDecision } from "../../lib/routing/retry";
import { balancedSource, cloudSource } from "../../lib/upstreams/sources";
import { endSpan, SpanKind, startSpan, traceparentOf } from "../../lib/telemetry/tracing";
import type { Call, Outcome, Upstream, UpstreamSource } from "../../lib/upstreams/types";
import type { ChatJob, CompletionJob } from "../../lib/inference/types";
import type { Gateway } from "./gateway";
import type { Req, Responder } from "./types";
import { isClientError, waitUnlessGone } from "./retry-wait";

type Kind = "chat" | "completion";

/** The request body and how to answer it. */
export interface Io {
  body: unknown;
  responder: Responder;
  /** The node that holds the conversation's cache (a continued response's): taken while it has a free slot. */
  preferNode?: string;
  /**
   * A Responses request, for an upstream that speaks the API itself
   * (`openai:`, a runtime listing `/responses`): sent as it is, and its
   * answer relayed as it is by the responder for who made it.
   */
  native?: { request: NativeResponses; responder: (producer: Producer) => Responder };
}

/** This process's balancer (lib/core/router-core.ts): the api runs beside it, never without it. */
function balancerOf(broker: ServiceBroker): Balancer {
  const b = routerCore(broker).balancer;
  if (!b) throw apiError(503, "The balancer is not running in this process.", "service_unavailable");
  return b;
}

/** The extra last chunk of `include_usage`: usage and no choices. */
function isUsageChunk(chunk: unknown): boolean {
  const c = chunk as { usage?: unknown; choices?: unknown[] };
  return !!c.usage && (!c.choices || c.choices.length === 0);
}

/** Whether a stream chunk carries generated text or a tool call's arguments. */
function carriesText(chunk: unknown): boolean {
  const choice = (chunk as { choices?: Array<{ delta?: Record<string, unknown>; text?: unknown }> }).choices?.[0];
  if (!choice) return false;
  const d = choice.delta;
  return !!(choice.text || d?.content || d?.reasoning_content || d?.tool_calls);
}

export function cloudOnlyChat(model: string) {
  return apiError(
    400,
    `Cloud models serve chat completions only; '${model}' cannot be used here.`,
    "unsupported_model",
    { param: "model" },
  );
}

/** A request's place in the wait queue: its key's priority, and whom it is fair across (its key, or its login). */
function queueClass(req: Req): { priority?: number; fairKey?: string } {
  const auth = req.$auth;
  if (auth?.kind === "apiKey" && auth.key) return { priority: auth.key.priority, fairKey: `key:${auth.key.id}` };
  if (auth?.kind === "user") return { fairKey: `user:${auth.claims.sub}` };
  return {};
}

/** The upstreams a request may go to: its cloud provider, or what the balancer picks (within `waitMs` when given). */
export function sourceFor(gw: Gateway, req: Req, call: Call, preferNode?: string, waitMs?: number): UpstreamSource {
  const cloud = cloudModel(call.model);
  if (cloud) return cloudSource(req.$ctx, cloud.provider.name, call.model);
  const job = call.job;
  const messages = job && "messages" in job ? job.messages : undefined;
  return balancedSource(
    balancerOf(req.$ctx.broker),
    req.$ctx,
    {
      model: call.model,
      // hashed once, and only for the strategies that use it (auto prefers a conversation's node too)
      affinityKey:
        gw.router.balancerMode === "affinity" || gw.router.balancerMode === "auto"
          ? affinityKey(
              call.model,
              job && "user" in job ? job.user : undefined,
              messages,
              job && "cacheKey" in job ? job.cacheKey : undefined,
            )
          : undefined,
      preferNode,
      waitMs,
      ...queueClass(req),
    },
    { log: gw.logger, timeoutMs: gw.router.requestTimeoutSecs * 1000, lanes: routerCore(req.$ctx.broker).lanes },
  );
}

/** What the client gets once an upstream has opened the call: a JSON answer, or the relayed stream. */
type Deliver = (result: unknown, upstream: Upstream, firstByte: () => void) => Promise<"ok">;

/**
 * The request path: pick an upstream, open the call there, deliver what it
 * answers; a failure before the client got anything is retried as the one
 * policy says (another node or runtime at once, a cloud provider after its
 * Retry-After). A client that leaves stops the call upstream.
 */
export async function serve(
  gw: Gateway,
  res: ServerResponse,
  trace: RequestTrace,
  source: UpstreamSource,
  call: Call,
  deliver: Deliver,
): Promise<void> {
  let current: Upstream | null = null;
  res.once("close", () => {
    if (!res.writableFinished) current?.cancel(call);
  });
  const { maxRetries } = gw.router;
  const tried: string[] = [];
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    let upstream: Upstream;
    // tracing on: the balancer's pick (a wait in the queue or for a load included) is a span of the request
    const pick = trace.span && startSpan("balancer.pick", trace.span, { "gen_ai.request.model": call.model });
    try {
      upstream = await source.next(tried);
    } catch (err) {
      endSpan(pick, {}, (err as Error)?.message ?? "no upstream");
      // every node that had the model failed: the client hears about the failure, not "no node"
      throw lastError ?? err;
    }
    if (pick) endSpan(pick, pickAttributes(upstream));
    // the attempt's span: the node's spans (or the runtime's, the cloud's) are its children
    const span =
      trace.span &&
      startSpan(`${call.op} ${upstream.id}`, trace.span, { "llm_router.node": upstream.id }, SpanKind.CLIENT);
    call.traceparent = traceparentOf(span);
    tried.push(upstream.id);
    trace.attempt(upstream.id, upstream.name);
    if (upstream.loadMs !== undefined) trace.loadMs = (trace.loadMs ?? 0) + upstream.loadMs;
    if (upstream.queue) trace.queued(upstream.queue.ahead, upstream.queue.waitedMs);
    if (upstream.kind === "cloud") trace.kind = "cloud";
    current = upstream;
    res.setHeader("X-Router-Node", upstream.id);
    let outcome: Outcome = "node_failed";
    let ttftMs: number | undefined;
    const startedAt = performance.now();
    try {
      const result = await upstream.open(call);
      // the node's time to first token: the whole answer, or a stream's first chunk
      outcome = await deliver(result, upstream, () => (ttftMs ??= performance.now() - startedAt));
      return;
    } catch (err) {
      const decision = retryDecision(err, attempt, upstream.kind, { maxRetries });
      outcome = decision.retry ? "node_failed" : isClientError(err) ? "client_error" : "node_failed";
      if (!decision.retry || res.headersSent || res.destroyed) throw err;
      trace.answered(null);
      upstream.cancel(call);
      lastError = err;
      const why = (err as Error)?.message;
      gw.logger.warn(
        upstream.kind === "cloud"
          ? `${upstream.id} failed (${why}); retrying ${call.requestId} in ${Math.round(decision.delayMs)} ms`
          : `Node ${upstream.id} failed (${why}); retrying ${call.requestId} elsewhere`,
      );
      if (decision.delayMs > 0) await waitUnlessGone(res, decision.delayMs);
    } finally {
      source.done(upstream, outcome, ttftMs);
      if (span) endSpan(span, { "llm_router.outcome": outcome }, outcome === "node_failed" ? "failed" : null);
    }
  }
}

/** What the pick span says: where the request went, and its wait for a slot or a load. */
function pickAttributes(u: Upstream): Record<string, string | number> {
  const out: Record<string, string | number> = { "llm_router.node": u.id, "llm_router.upstream_kind": u.kind };
  if (u.queue) {
    out["llm_router.queue_ahead"] = u.queue.ahead;
    out["llm_router.queue_wait_ms"] = Math.round(u.queue.waitedMs);
  }
  if (u.loadMs !== undefined) out["llm_router.load_ms"] = Math.round(u.loadMs);
  return out;
}

/**
 * Relays an opened stream in the client's format while the trace assembles
 * it for history; the usage chunk (always asked for) goes only to a client
 * that asked. A stream counts as started once its first chunk arrives:
 * failing before that is retried.
 */
async function relayRecorded(
  gw: Gateway,
  res: ServerResponse,
  result: unknown,
  out: Responder,
  trace: RequestTrace,
  wantsUsage: boolean,
  upstream: Upstream,
  call: Call,
  firstByte: () => void,
  rename: string | null,
): Promise<"ok"> {
  const idleMs = gw.router.streamIdleTimeoutSecs * 1000;
  const opened = await openStream(result as ChunkSource, idleMs);
  firstByte();
  trace.firstByte();
  const assembled = new StreamAssembler();
  const relay = await out.relay(res, opened, idleMs, (chunk) => {
    if (rename !== null) {
      changed(chunk);
      (chunk as { model?: string }).model = rename;
    }
    assembled.add(chunk);
    // a chunk of text is a token (nodes send one each): counted against the key's limits as it passes
    if (trace.meter && carriesText(chunk)) trace.meter.add(1);
    return wantsUsage || !isUsageChunk(chunk);
  });
  if (relay.answered) trace.answered(relay.answered.body, relay.answered.usage);
  else trace.answered(assembled.body(), assembled.usage);
  if (relay.clientClosed || relay.error) upstream.cancel(call);
  // recorded as failed; the client already has the error event
  if (relay.error) throw relay.error;
  return "ok";
}

/**
 * Tries each model of the chain for `requested` (an alias's model, then the
 * fallbacks) until one takes the request. A model with fallbacks after it
 * gets `fallbackAfterSecs` to find a node; a failure before the client got
 * anything that another upstream could fix (no node healthy, the queue full
 * or timed out, every node failed) moves to the next. Sets `X-Router-Model`
 * and the trace's served model for each try.
 */
export async function withFallbacks(
  gw: Gateway,
  req: Req,
  res: ServerResponse,
  trace: RequestTrace,
  requested: string,
  attempt: (model: string, waitMs: number | undefined) => Promise<void>,
): Promise<void> {
  const chain = routerCore(req.$ctx.broker).routes?.chain(requested) ?? [requested];
  for (let i = 0; ; i++) {
    const model = chain[i];
    const last = i === chain.length - 1;
    trace.servedModel = model;
    if (!res.headersSent) res.setHeader("X-Router-Model", model);
    try {
      await attempt(model, last ? undefined : gw.router.fallbackAfterSecs * 1000);
      return;
    } catch (err) {
      if (last || res.headersSent || res.destroyed || !isRetryable(err)) throw err;
      gw.logger.warn(
        `${model} could not take a request for ${requested} (${(err as Error)?.message}): trying ${chain[i + 1]}`,
      );
    }
  }
}

/** The job a node or runtime is given for a validated body; usage is always asked of it (history and metrics count tokens). */
function jobFor(kind: Kind, body: ChatBody | CompletionBody): ChatJob | CompletionJob {
  const job = kind === "chat" ? chatJob(body as ChatBody) : completionJob(body as CompletionBody);
  // passed on to the client only when it asked
  job.includeUsage = true;
  return job;
}

export async function generate(gw: Gateway, req: Req, res: ServerResponse, kind: Kind, trace: RequestTrace, io: Io) {
  // the body is validated once; a node or runtime gets a job made of it, a cloud provider the body itself
  const body = kind === "chat" ? parseRequest(gw.schemas.chat, io.body) : parseRequest(gw.schemas.completion, io.body);
  const requested = body.model;
  if (cloudModel(requested) && kind !== "chat") throw cloudOnlyChat(requested);
  // made when a node or runtime is tried (a cloud provider takes the body, images and all)
  let job: ChatJob | CompletionJob | null = null;
  const stream = body.stream === true;
  trace.model = requested;
  trace.stream = stream;
  gw.checkModelAllowed(req, requested);
  const clientWantsUsage = body.stream_options?.include_usage === true;
  const cloudRequestId = `chatcmpl-${randomUUID().replace(/-/g, "")}`;
  await withFallbacks(gw, req, res, trace, requested, async (model, waitMs) => {
    const cloud = cloudModel(model) !== null;
    if (cloud && kind !== "chat") throw cloudOnlyChat(model);
    // the answer names the model asked for (an alias, or the first of a chain), not the one that answered
    const rename = model === requested ? null : requested;
    const local = cloud ? null : (job ??= jobFor(kind, body));
    const call: Call = {
      op: kind,
      requestId: local?.requestId ?? cloudRequestId,
      model,
      stream,
      // copies only for another model than the body names (the common case copies nothing)
      job: local && (local.model === model ? local : { ...local, model }),
      body: body.model === model ? body : { ...body, model },
      native: io.native?.request,
    };
    const preferNode = model === requested ? io.preferNode : undefined;
    await serve(
      gw,
      res,
      trace,
      sourceFor(gw, req, call, preferNode, waitMs),
      call,
      async (result, upstream, firstByte) => {
        const native = io.native && upstream.speaksResponses;
        const out = native ? io.native!.responder(upstream.kind === "cloud" ? "openai" : "runtime") : io.responder;
        if (!stream) {
          if (rename !== null && !native && result && typeof result === "object") {
            changed(result);
            (result as { model?: string }).model = rename;
          }
          firstByte();
          trace.firstByte();
          trace.answered(result);
          const answered = await out.json(res, result);
          if (answered) trace.answered(answered.body, answered.usage);
          return "ok";
        }
        return relayRecorded(
          gw,
          res,
          result,
          out,
          trace,
          clientWantsUsage,
          upstream,
          call,
          firstByte,
          native ? null : rename,
        );
      },
    );
  });
}

/** An embeddings request's body and how its answer is written, when not `/v1/embeddings`' own (Ollama's). */
export interface EmbeddingIo {
  body: unknown;
  respond(
    res: ServerResponse,
    answer: { model?: string; data: Array<{ embedding: number[] | string }>; usage?: { prompt_tokens?: number } },
  ): void;
}

export async function embeddings(gw: Gateway, req: Req, res: ServerResponse, trace: RequestTrace, io?: EmbeddingIo) {
  const body = parseBody(embeddingSchema, io ? io.body : req.body);
  const requested = body.model;
  if (cloudModel(requested)) throw cloudOnlyChat(requested);
  trace.model = requested;
  gw.checkModelAllowed(req, requested);
  const requestId = `emb-${randomUUID().replace(/-/g, "")}`;
  await withFallbacks(gw, req, res, trace, requested, async (model, waitMs) => {
    if (cloudModel(model)) throw cloudOnlyChat(model);
    const asked = body.model === model ? body : { ...body, model };
    const job = embeddingJob(asked);
    const call: Call = { op: "embeddings", requestId, model, stream: false, job, body: asked };
    await serve(gw, res, trace, sourceFor(gw, req, call, undefined, waitMs), call, async (result) => {
      const answer = result as {
        model?: string;
        data: Array<{ embedding: number[] | string }>;
        usage?: { prompt_tokens?: number };
      };
      if (model !== requested) answer.model = requested;
      if (body.encoding_format === "base64") {
        for (const d of answer.data) d.embedding = embeddingToBase64(d.embedding as number[]);
      }
      trace.firstByte();
      // the vectors are not worth keeping: their count and usage are
      trace.answered({ object: "list", embeddings: answer.data.length, usage: answer.usage }, answer.usage);
      if (io) io.respond(res, answer);
      else sendJson(res, 200, answer);
      return "ok";
    });
  });
}
