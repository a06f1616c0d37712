/**
 * An external OpenAI-compatible runtime (llama.cpp's server, vLLM, Ollama,
 * another router), reached over HTTP (lib/runtimes/openai-upstream.ts). It
 * gets the client's own validated body, so fields the router does not use
 * (tools, response_format, logprobs…) reach it; one that lists `/responses`
 * gets Responses requests as they are. Cancelled by aborting the call.
 */
import type { ChatJob, CompletionJob } from "../inference/types";
import type { ChatBody, CompletionBody } from "../openai/schemas";
import { callUpstream, type Runtime } from "../runtimes/openai-upstream";
import { nativeBody } from "../responses/passthrough";
import { keptText, withFirstField } from "../http/raw-json";
import { Cancel } from "./cancel";
import { jobOf, type Call, type Upstream } from "./types";

export class RuntimeUpstream implements Upstream {
  readonly kind = "runtime";
  readonly speaksResponses: boolean;
  private readonly aborted = new Cancel();

  constructor(
    private readonly runtime: Runtime,
    readonly id: string,
    readonly name: string | null,
    /** Limit for a call that is not streamed (embeddings, rerank); streams are bounded by their idle timeout. */
    private readonly timeoutMs: number,
  ) {
    this.speaksResponses = runtime.endpoints?.includes("/responses") ?? false;
  }

  async open(call: Call): Promise<unknown> {
    const job = jobOf(call);
    if (call.native && this.speaksResponses) {
      const body = nativeBody(call.native, "runtime", call.model);
      return callUpstream(this.runtime, "responses", job, this.aborted, body, call.traceparent);
    }
    if (call.op !== "embeddings" && call.op !== "rerank") {
      const body = runtimeBody(call.body as ChatBody, job as ChatJob);
      return callUpstream(this.runtime, call.op, job, this.aborted, body, call.traceparent);
    }
    // not streamed: bounded by the request timeout too
    const timer = setTimeout(() => this.aborted.abort(new DOMException("timed out", "TimeoutError")), this.timeoutMs);
    try {
      return await callUpstream(this.runtime, call.op, job, this.aborted, undefined, call.traceparent);
    } finally {
      clearTimeout(timer);
    }
  }

  cancel(): void {
    this.aborted.abort();
  }
}

/**
 * What an external runtime is sent: the client's own validated body, with
 * `stream` said (a runtime is not left to its default), usage asked for on
 * streams (history and metrics count tokens), and a completion without a
 * length gets OpenAI's default of 16. A body that needs nothing else goes as
 * the text it came as, when it kept it (lib/http/raw-json.ts): the same
 * object, or the text with `"stream":false` put first; not serialised again.
 */
export function runtimeBody(
  body: ChatBody | CompletionBody,
  job: ChatJob | CompletionJob,
): Record<string, unknown> | string {
  const setsLength =
    body.max_tokens == null &&
    !("max_completion_tokens" in body && body.max_completion_tokens != null) &&
    job.maxTokens !== undefined;
  const usageAsked = job.stream ? body.stream_options?.include_usage === true : body.stream_options === undefined;
  if (usageAsked && !setsLength) {
    if (body.stream === job.stream) return body;
    const text = body.stream === undefined ? keptText(body) : undefined;
    if (text !== undefined) return withFirstField(text, "stream", job.stream);
  }
  const out: Record<string, unknown> = { ...body, stream: job.stream };
  if (job.stream) out.stream_options = { ...body.stream_options, include_usage: true };
  else delete out.stream_options;
  if (setsLength) out.max_tokens = job.maxTokens;
  return out;
}
