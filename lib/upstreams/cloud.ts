/**
 * A cloud provider (`openai:`, `google:`, `anthropic:`), through the cloud
 * service of this router (services/cloud.service.ts), which translates to
 * and from the provider's API (OpenAI's Responses requests go as they are).
 * One attempt per `open`: retries are the
 * request path's (lib/routing/retry.ts). Closing the stream, or aborting,
 * closes the provider's request.
 */
import { randomUUID } from "node:crypto";
import type { ChatBody } from "../openai/schemas";
import type { OpenAIChatRequest } from "../providers/types";
import type { Call, Caller, Upstream } from "./types";

export class CloudUpstream implements Upstream {
  readonly kind = "cloud";
  readonly id: string;
  readonly speaksResponses: boolean;
  private readonly meta: { id: string; model: string; created: number };
  private attempt: AbortController | null = null;

  constructor(
    private readonly caller: Caller,
    readonly name: string,
    model: string,
  ) {
    this.id = `cloud:${name}`;
    this.speaksResponses = name === "openai";
    // one completion id and creation time for every attempt of the request
    this.meta = { id: `chatcmpl-${randomUUID().replace(/-/g, "")}`, model, created: Math.floor(Date.now() / 1000) };
  }

  open(call: Call): Promise<unknown> {
    // a controller per attempt: a cancel before a retry must not abort the next one
    this.attempt = new AbortController();
    if (call.native && this.speaksResponses) {
      return this.caller.call("cloud.responses", {
        request: call.native,
        model: call.model,
        signal: this.attempt.signal,
        traceparent: call.traceparent,
      });
    }
    return this.caller.call("cloud.chat", {
      request: call.body as ChatBody as unknown as OpenAIChatRequest,
      meta: this.meta,
      signal: this.attempt.signal,
      traceparent: call.traceparent,
    });
  }

  /** Aborts the provider's request (a stream's close does too). */
  cancel(): void {
    this.attempt?.abort();
  }
}
