/**
 * Runs jobs on an Engine and shapes the results as OpenAI objects: a whole
 * response, or an object-mode stream of chunks. Keeps an AbortController per
 * request id so the api can cancel a generation from another process (stream
 * aborts do not cross the transporter by themselves).
 */
import { PassThrough, Readable } from "node:stream";
import * as fmt from "../openai/format";
import type {
  ChatJob,
  CompletionJob,
  Engine,
  GenerationHooks,
  GenerationResult,
  JobBase,
  ToolCallFragment,
} from "./types";
import { Throughput } from "./throughput";
import { Coalescer, type CoalesceOptions } from "./coalesce";
import { apiError, badRequest } from "../openai/errors";

type Kind = "chat" | "completion";

/** Loads a model for a request and keeps it loaded until released (the node's ModelManager). */
export interface ModelGate {
  acquire(model: string): Promise<void>;
  release(model: string): void;
}

/** Every model is loaded already (benches and tests that run an engine directly). */
const OPEN_GATE: ModelGate = { acquire: async () => undefined, release: () => undefined };

export class JobRunner {
  private readonly running = new Map<string, AbortController>();
  readonly throughput = new Throughput();

  constructor(
    private readonly engine: Engine,
    private readonly onChange: () => void = () => undefined,
    private readonly gate: ModelGate = OPEN_GATE,
    /** Streamed chunks gathered into fewer stream items (lib/inference/coalesce.ts); off by default. */
    private readonly coalesce: CoalesceOptions = { windowMs: 0, maxChunks: 1 },
  ) {}

  get activeRequests(): number {
    return this.running.size;
  }

  /** `batched: false`: a stream's chunks one by one (a token lane batches them: lib/cluster/token-lanes.ts). */
  chat(job: ChatJob, batched = true): Promise<fmt.ChatCompletion> | Readable {
    return this.run("chat", job, batched);
  }

  completion(job: CompletionJob, batched = true): Promise<fmt.TextCompletion> | Readable {
    return this.run("completion", job, batched);
  }

  /** Stops a running generation; true when there was one. */
  cancel(requestId: string): boolean {
    const ac = this.running.get(requestId);
    if (!ac) return false;
    ac.abort(apiError(499, "The client closed the request.", "client_closed"));
    return true;
  }

  abortAll(): void {
    for (const id of [...this.running.keys()]) this.cancel(id);
  }

  private run(kind: "chat", job: ChatJob, batched: boolean): Promise<fmt.ChatCompletion> | Readable;
  private run(kind: "completion", job: CompletionJob, batched: boolean): Promise<fmt.TextCompletion> | Readable;
  private run(
    kind: Kind,
    job: ChatJob | CompletionJob,
    batched: boolean,
  ): Promise<fmt.ChatCompletion | fmt.TextCompletion> | Readable {
    if (this.running.has(job.requestId)) {
      throw apiError(409, `Request ${job.requestId} is already running on this node.`, "duplicate_request");
    }
    const n = kind === "chat" ? ((job as ChatJob).n ?? 1) : 1;
    // a model not loaded yet has its slots checked by the engine's queue (choices past them wait their turn)
    const slots = this.engine.load().find((m) => m.id === job.model)?.capacity;
    if (slots !== undefined && n > slots) {
      throw badRequest(
        `n is ${n}, but this node generates at most ${slots} answers of '${job.model}' at once (LLM_NODE_PARALLEL).`,
        "n",
        "unsupported_parameter",
      );
    }
    const ac = new AbortController();
    this.running.set(job.requestId, ac);
    this.onChange();
    const meta: fmt.Meta = { id: job.requestId, model: job.model, created: job.created };
    /** Runs the `n` generations together (choice i with seed + i); one failing stops the others. */
    const generate: Generate = async (hooksFor) => {
      try {
        // loaded first when it is not (the node's model manager); kept loaded while it runs
        await this.gate.acquire(job.model);
      } catch (err) {
        this.running.delete(job.requestId);
        this.onChange();
        throw err;
      }
      const started = Date.now();
      const runs = Array.from({ length: n }, (_, i) => {
        const hooks: GenerationHooks = { signal: ac.signal, ...hooksFor?.(i) };
        const one = { ...job, seed: job.seed !== undefined ? job.seed + i : undefined };
        const p =
          kind === "chat" ? this.engine.chat(one as ChatJob, hooks) : this.engine.complete(one as CompletionJob, hooks);
        return p.then((r) => {
          this.throughput.record(r.completionTokens, Date.now() - started);
          return r;
        });
      });
      return Promise.all(runs)
        .catch((err: unknown) => {
          ac.abort(err);
          throw err;
        })
        .finally(() => {
          this.gate.release(job.model);
          this.running.delete(job.requestId);
          this.onChange();
        });
    };

    if (!job.stream) {
      return generate().then((r) => (kind === "chat" ? fmt.chatCompletion(meta, r) : fmt.textCompletion(meta, r[0])));
    }
    return this.stream(kind, job, meta, n, generate, batched);
  }

  private stream(kind: Kind, job: JobBase, meta: fmt.Meta, n: number, generate: Generate, batched: boolean): Readable {
    const out = new PassThrough({ objectMode: true });
    const send = new Coalescer(out, batched ? this.coalesce : { windowMs: 0, maxChunks: 1 });
    const started = Array.from({ length: n }, () => false);
    // The role travels with a choice's first text, so nothing is sent before the
    // node has really started: an error until then is still a plain HTTP error.
    const onText = (i: number) => (text: string) => {
      if (text === "") return;
      if (kind === "chat") {
        send.push(fmt.chatChunk(meta, started[i] ? { content: text } : { role: "assistant", content: text }, null, i));
      } else {
        send.push(fmt.textChunk(meta, text));
      }
      started[i] = true;
    };
    // a tool call's fragments, in OpenAI's shape: the first of a call with its id, type and name
    const onToolCall = (i: number) => (f: ToolCallFragment) => {
      const delta: fmt.ToolCallDelta = f.id
        ? { index: f.index, id: f.id, type: "function", function: { name: f.name, arguments: f.arguments } }
        : { index: f.index, function: { arguments: f.arguments } };
      const opening = started[i] ? {} : { role: "assistant" as const, content: null };
      send.push(fmt.chatChunk(meta, { ...opening, tool_calls: [delta] }, null, i));
      started[i] = true;
    };
    generate((i) => ({ onText: onText(i), onToolCall: onToolCall(i) })).then(
      (results) => {
        if (kind === "chat") {
          results.forEach((r, i) => {
            send.push(fmt.chatChunk(meta, started[i] ? {} : { role: "assistant", content: "" }, r.finishReason, i));
          });
          if (job.includeUsage) send.push(fmt.chatUsageChunk(meta, results));
        } else {
          send.push(fmt.textChunk(meta, "", results[0].finishReason));
          if (job.includeUsage) send.push(fmt.textUsageChunk(meta, results[0]));
        }
        send.end();
      },
      (err: unknown) => send.fail(err instanceof Error ? err : new Error(String(err))),
    );
    return out;
  }
}

/** Hooks for choice i. */
type Generate = (
  hooksFor?: (i: number) => Pick<GenerationHooks, "onText" | "onToolCall">,
) => Promise<GenerationResult[]>;
