/**
 * Runs jobs on an Engine and shapes the results as OpenAI objects: a whole
 * response, or an object-mode stream of chunks. Keeps an AbortController per
 * request id so the api can cancel a generation from another process (stream
 * aborts do not cross the transporter by themselves).
 */
import { PassThrough, Readable } from "node:stream";
import * as fmt from "../openai/format";
import type { ChatJob, CompletionJob, Engine, GenerationResult, JobBase } from "./types";
import { Throughput } from "./throughput";
import { apiError } from "../openai/errors";

type Kind = "chat" | "completion";

export class JobRunner {
  private readonly running = new Map<string, AbortController>();
  readonly throughput = new Throughput();

  constructor(
    private readonly engine: Engine,
    private readonly onChange: () => void = () => undefined,
  ) {}

  get activeRequests(): number {
    return this.running.size;
  }

  chat(job: ChatJob): Promise<fmt.ChatCompletion> | Readable {
    return this.run("chat", job);
  }

  completion(job: CompletionJob): Promise<fmt.TextCompletion> | Readable {
    return this.run("completion", job);
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

  private run(kind: "chat", job: ChatJob): Promise<fmt.ChatCompletion> | Readable;
  private run(kind: "completion", job: CompletionJob): Promise<fmt.TextCompletion> | Readable;
  private run(kind: Kind, job: ChatJob | CompletionJob): Promise<fmt.ChatCompletion | fmt.TextCompletion> | Readable {
    if (this.running.has(job.requestId)) {
      throw apiError(409, `Request ${job.requestId} is already running on this node.`, "duplicate_request");
    }
    const ac = new AbortController();
    this.running.set(job.requestId, ac);
    this.onChange();
    const meta: fmt.Meta = { id: job.requestId, model: job.model, created: job.created };
    const started = Date.now();
    const generate = (onText?: (t: string) => void): Promise<GenerationResult> => {
      const hooks = { signal: ac.signal, onText };
      const p =
        kind === "chat" ? this.engine.chat(job as ChatJob, hooks) : this.engine.complete(job as CompletionJob, hooks);
      return p
        .then((r) => {
          this.throughput.record(r.completionTokens, Date.now() - started);
          return r;
        })
        .finally(() => {
          this.running.delete(job.requestId);
          this.onChange();
        });
    };

    if (!job.stream) {
      return generate().then((r) => (kind === "chat" ? fmt.chatCompletion(meta, r) : fmt.textCompletion(meta, r)));
    }
    return this.stream(kind, job, meta, generate);
  }

  private stream(
    kind: Kind,
    job: JobBase,
    meta: fmt.Meta,
    generate: (onText: (t: string) => void) => Promise<GenerationResult>,
  ): Readable {
    const out = new PassThrough({ objectMode: true });
    let first = true;
    // The role travels with the first text, so nothing is sent before the
    // node has really started: an error until then is still a plain HTTP error.
    const onText = (text: string) => {
      if (text === "") return;
      if (kind === "chat") {
        out.write(fmt.chatChunk(meta, first ? { role: "assistant", content: text } : { content: text }));
      } else {
        out.write(fmt.textChunk(meta, text));
      }
      first = false;
    };
    generate(onText).then(
      (r) => {
        if (kind === "chat") {
          out.write(fmt.chatChunk(meta, first ? { role: "assistant", content: "" } : {}, r.finishReason));
          if (job.includeUsage) out.write(fmt.chatUsageChunk(meta, r));
        } else {
          out.write(fmt.textChunk(meta, "", r.finishReason));
          if (job.includeUsage) out.write(fmt.textUsageChunk(meta, r));
        }
        out.end();
      },
      (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))),
    );
    return out;
  }
}
