/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is set (the standard
 * `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`;
 * `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off).
 * Off, nothing is made per request: `tracingOn()` is false and every helper
 * returns at once. On, each process exports its spans over OTLP/HTTP (JSON)
 * in batches, named by `OTEL_SERVICE_NAME` (default `llm-router`) and its
 * node ID; one request is one trace across processes: the api's server span
 * (a child of the client's W3C `traceparent`), the balancer's pick, and the
 * node's spans, joined by the `traceparent` its job carries over NATS.
 */
import {
  context,
  propagation,
  trace,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Context,
  type Span,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ENV, read } from "../config";

export { SpanKind, SpanStatusCode, type Span };

let provider: BasicTracerProvider | null = null;

/** Whether the environment asks for traces (its values checked at start: lib/config/spec.ts). */
export function tracingWanted(): boolean {
  if (read(ENV.OTEL_SDK_DISABLED) || read(ENV.OTEL_TRACES_EXPORTER) === "none") return false;
  return !!(read(ENV.OTEL_EXPORTER_OTLP_ENDPOINT) || read(ENV.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT));
}

/** Whether this process exports spans. */
export function tracingOn(): boolean {
  return provider !== null;
}

/** Starts exporting this process's spans, when the environment asks for it; `instance` names the process. */
export function startTracing(instance: string): void {
  if (provider || !tracingWanted()) return;
  provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": read(ENV.OTEL_SERVICE_NAME),
      "service.instance.id": instance,
    }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

/** Sends what is left and stops (the process is stopping). */
export async function stopTracing(): Promise<void> {
  const p = provider;
  provider = null;
  if (p) await p.shutdown().catch(() => undefined);
}

const tracer = () => trace.getTracer("llm-router");

/** The context a W3C `traceparent` (and `tracestate`) names, or the root context. */
export function contextFrom(carrier: Record<string, unknown> | undefined): Context {
  if (!carrier) return context.active();
  return propagation.extract(context.active(), carrier, {
    get: (c, key) => {
      const v = (c as Record<string, unknown>)[key];
      return typeof v === "string" ? v : Array.isArray(v) ? String(v[0]) : undefined;
    },
    keys: (c) => Object.keys(c as object),
  });
}

/** A span (null when tracing is off), a child of `parent` (a span, or a context from `contextFrom`). */
export function startSpan(
  name: string,
  parent: Span | Context | null | undefined,
  attributes: Attributes = {},
  kind: SpanKind = SpanKind.INTERNAL,
  startTime?: number,
): Span | null {
  if (!provider) return null;
  const ctx =
    parent && "spanContext" in parent ? trace.setSpan(context.active(), parent) : (parent ?? context.active());
  return tracer().startSpan(name, { kind, attributes, startTime }, ctx as Context);
}

/** The `traceparent` header of a span (undefined without one). */
export function traceparentOf(span: Span | null | undefined): string | undefined {
  if (!span) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  return carrier.traceparent;
}

/** Ends a span with attributes and, for an error status, the error. */
export function endSpan(span: Span | null | undefined, attributes: Attributes = {}, error?: string | null): void {
  if (!span) return;
  span.setAttributes(attributes);
  if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}
