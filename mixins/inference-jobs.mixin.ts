/**
 * The inference node's jobs, split out of services/inference.service.ts:
 * chat and completion (the job runner, streamed or whole), embeddings and
 * rerank (the engine, on a model held loaded meanwhile), each in spans when
 * its call carries a trace (lib/telemetry/job-spans.ts). A router on the
 * transporter that asks for it gets a stream's chunks over its token lane
 * (lib/cluster/token-lanes.ts) rather than as a Moleculer stream.
 */
import { Readable } from "node:stream";
import type { Context, Service, ServiceBroker, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { LaneSender, type ErrorRegenerator } from "../lib/cluster/token-lanes";
import type { NodeConfig } from "../lib/config/node";
import type { ModelManager } from "../lib/inference/model-manager";
import type { JobRunner } from "../lib/inference/runner";
import type { ChatJob, CompletionJob, EmbeddingJob, Engine, RerankJob } from "../lib/inference/types";
import { embeddingList } from "../lib/openai/format";
import { traceJob } from "../lib/telemetry/job-spans";

interface Vars extends Provided {
  engine: Engine | null;
  runner: JobRunner | null;
  /** The token lanes to the routers (with a transporter and LLM_NODE_STREAM_BATCH_MS > 0). */
  lanes: LaneSender | null;
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
  /** The router to answer over its token lane: the caller, when it asked for one and this node has lanes. */
  laneTo(ctx: Context<{ stream?: boolean }, { lane?: boolean }>): string | null;
  /** A streamed answer goes over the lane (the call is answered `{ lane: true }`); anything else as it is. */
  onLane<T>(
    routerID: string,
    requestId: string,
    out: Promise<T> | Readable,
    tokens: boolean,
  ): Promise<T> | Readable | { lane: true };
  /** Runs `work` on `model`, held loaded meanwhile (loaded first when it is not). */
  withModel<T>(model: string, work: () => Promise<T>): Promise<T>;
}

type This = Service & Vars & Methods & Provided;

const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
  name: "inference",

  created(this: This) {
    this.lanes = null;
  },

  started(this: This) {
    startLanes.call(this);
  },

  events: {
    // a router that stops answering may only be starved of CPU for a moment: its lane holds its streams'
    // chunks for a heartbeat timeout; one that left for good (or does not come back by then) has its streams stop
    "$node.disconnected"(this: This, ctx: Context<{ node: { id: string }; unexpected?: boolean }>) {
      const id = ctx.params.node.id;
      const stop = (ids: string[]) => {
        if (ids.length) this.logger.warn(`router ${id} left: stopping its ${ids.length} stream(s)`);
        for (const r of ids) this.runner?.cancel(r);
      };
      if (!ctx.params.unexpected) return stop(this.lanes?.routerLost(id) ?? []);
      const graceMs = (this.broker.options.heartbeatTimeout ?? 15) * 1000;
      this.lanes?.routerGone(id, graceMs, stop);
    },
    "$node.connected"(this: This, ctx: Context<{ node: { id: string } }>) {
      this.lanes?.routerBack(ctx.params.node.id);
    },
  },

  actions: {
    chat: {
      visibility: "public",
      handler(this: This, ctx: Context<ChatJob, { traceparent?: string; lane?: boolean; laneTokens?: boolean }>) {
        const lane = this.laneTo(ctx);
        const out = this.traced(ctx, "chat", () => this.requireRunner().chat(ctx.params, lane === null));
        return lane === null ? out : this.onLane(lane, ctx.params.requestId, out, ctx.meta?.laneTokens === true);
      },
    },
    completion: {
      visibility: "public",
      handler(this: This, ctx: Context<CompletionJob, { traceparent?: string; lane?: boolean; laneTokens?: boolean }>) {
        const lane = this.laneTo(ctx);
        const out = this.traced(ctx, "completion", () => this.requireRunner().completion(ctx.params, lane === null));
        return lane === null ? out : this.onLane(lane, ctx.params.requestId, out, ctx.meta?.laneTokens === true);
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
    laneTo(this: This, ctx: Context<{ stream?: boolean }, { lane?: boolean }>): string | null {
      const from = ctx.nodeID;
      if (!this.lanes || ctx.meta?.lane !== true || ctx.params.stream !== true || !from || from === this.broker.nodeID)
        return null;
      // a router this node does not know to listen on its lane yet (it has just started, its INFO is still on
      // its way) would never get the lane's messages (an event no one listens to is dropped): its own stream
      return listensOnLane(this.broker, from) ? from : null;
    },

    onLane<T>(
      this: This,
      routerID: string,
      requestId: string,
      out: Promise<T> | Readable,
      tokens: boolean,
    ): Promise<T> | Readable | { lane: true } {
      if (!(out instanceof Readable) || !this.lanes) return out;
      this.lanes.attach(routerID, requestId, out, tokens);
      return { lane: true };
    },

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

/** Whether this broker knows `routerID`'s api listening for its lane messages (`lanes.chunks` in its own group). */
function listensOnLane(broker: ServiceBroker, routerID: string): boolean {
  const events = (broker.registry as unknown as { events?: EventLists }).events;
  return events?.get("lanes.chunks", routerID)?.hasAvailable() === true;
}

/** The part of Moleculer's event catalog read here. */
interface EventLists {
  get(eventName: string, group: string): { hasAvailable(): boolean } | undefined;
}

/** The node's token lanes, once the service has started (its settings are read by then). */
function startLanes(this: This): void {
  const windowMs = (this.settings as unknown as { node: NodeConfig }).node.streamBatch.windowMs;
  if (!this.broker.transit || windowMs <= 0) return;
  const regenerator = (this.broker as unknown as { errorRegenerator: ErrorRegenerator }).errorRegenerator;
  this.lanes = new LaneSender({
    windowMs,
    // the router's api listens in an event group named by its node ID (services/api.service.ts)
    send: (routerID, entries) => void this.broker.emit("lanes.chunks", { entries }, { groups: [routerID] }),
    plain: (err) => regenerator.extractPlainError(err),
  });
}

export const InferenceJobsMixin = schema as unknown as Partial<ServiceSchema>;
