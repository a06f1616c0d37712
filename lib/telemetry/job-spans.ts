/**
 * A node's spans for a job that came with a `traceparent` (tracing on): the
 * job's server span, a child of the router's attempt span, and under it
 * `prompt_eval` (until the first chunk: the wait for a slot and the prompt)
 * and `generation` (first chunk to the end), with the model, node and token
 * counts. A stream is watched through a pass-through, never read for it.
 */
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { contextFrom, endSpan, SpanKind, startSpan, tracingOn, type Span } from "./tracing";

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

function usageAttributes(usage: Usage | null | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (usage?.prompt_tokens !== undefined) out["gen_ai.usage.input_tokens"] = usage.prompt_tokens;
  if (usage?.completion_tokens !== undefined) out["gen_ai.usage.output_tokens"] = usage.completion_tokens;
  return out;
}

/** Watches a stream of chunks: the prompt's span ends at the first, the generation's at the last. */
function watched(out: Readable, job: Span, prompt: Span | null): Readable {
  let generation: Span | null = null;
  let usage: Usage | null = null;
  const tap = new Transform({
    objectMode: true,
    transform(chunk: unknown, _enc, done) {
      if (!generation) {
        endSpan(prompt);
        generation = startSpan("generation", job);
      }
      // a batch of chunks (lib/inference/coalesce.ts) or one
      for (const c of Array.isArray(chunk) ? chunk : [chunk]) {
        const u = (c as { usage?: Usage | null })?.usage;
        if (u) usage = u;
      }
      done(null, chunk);
    },
  });
  pipeline(out, tap).then(
    () => {
      endSpan(prompt);
      endSpan(generation, usageAttributes(usage));
      endSpan(job, usageAttributes(usage));
    },
    (err: Error) => {
      endSpan(prompt);
      endSpan(generation, {}, err.message);
      endSpan(job, {}, err.message);
    },
  );
  return tap;
}

/** Runs a job, in spans when it came with a trace and tracing is on. */
export function traceJob<T>(
  traceparent: unknown,
  op: string,
  attributes: Record<string, string>,
  run: () => Promise<T> | Readable,
): Promise<T> | Readable {
  if (!tracingOn() || typeof traceparent !== "string") return run();
  const job = startSpan(`inference.${op}`, contextFrom({ traceparent }), attributes, SpanKind.SERVER)!;
  const prompt = op === "chat" || op === "completion" ? startSpan("prompt_eval", job) : null;
  let out: Promise<T> | Readable;
  try {
    out = run();
  } catch (err) {
    endSpan(prompt);
    endSpan(job, {}, (err as Error)?.message ?? String(err));
    throw err;
  }
  if (out instanceof Readable) return watched(out, job, prompt);
  return out.then(
    (result) => {
      endSpan(prompt);
      endSpan(job, usageAttributes((result as { usage?: Usage })?.usage));
      return result;
    },
    (err: Error) => {
      endSpan(prompt);
      endSpan(job, {}, err?.message);
      throw err;
    },
  );
}
