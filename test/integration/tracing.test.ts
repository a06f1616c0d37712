/**
 * OpenTelemetry across processes: a router and an inference node on a real
 * NATS server, both exporting over OTLP/HTTP to a receiver stand-in. A
 * streamed chat sent with the client's W3C `traceparent` is one trace: the
 * router's server span (the client's span its parent), the balancer's pick,
 * the attempt, and on the node the job's span with its prompt evaluation and
 * generation, carrying model, node and tokens. Without an endpoint nothing is
 * exported (the other tests' processes).
 */
import { randomBytes } from "node:crypto";
import { routerClient } from "../helpers/client";
import { createKey, startCli, startNats, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { startOtlpReceiver, type OtlpReceiver } from "../helpers/standins/otlp";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-traced";
let nats: { proc: Proc; url: string };
let node: Proc;
let router: { proc: Proc; url: string };
let otlp: OtlpReceiver;
let key: string;

beforeAll(async () => {
  otlp = await startOtlpReceiver();
  nats = await startNats();
  const telemetry = { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: "100" };
  const cluster = { TRANSPORTER: nats.url, HEARTBEAT_INTERVAL: "1", HEARTBEAT_TIMEOUT: "3", ...telemetry };
  const models = tempDir("tracing-models");
  writeModel(models, MODEL);
  node = startCli("traced-node", {
    ...cluster,
    SERVICES: "inference",
    NODEID: "traced-node",
    LLM_NODE_MODELS_DIR: models,
  });
  router = await startRouter("traced-router", { ...cluster, SERVICES: "router", NODEID: "traced-router" });
  key = await createKey(router.url);
  await waitFor(async () => (await routerClient(router.url, { key }).models()).some((m) => m.nodes.length > 0), {
    timeoutMs: 60_000,
    what: "the node serving",
  });
}, 90_000);

afterAll(async () => {
  await Promise.all([router?.proc.stop(), node?.stop()]);
  await nats?.proc.stop();
  await otlp?.close();
});

test("a streamed chat is one trace from the client's traceparent through the router to the node's generation", async () => {
  const traceId = randomBytes(16).toString("hex");
  const clientSpan = randomBytes(8).toString("hex");
  const res = await routerClient(router.url, { key }).chat(
    { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 5, stream: true },
    { headers: { traceparent: `00-${traceId}-${clientSpan}-01` } },
  );
  expect(res.status).toBe(200);
  await res.text();

  const spans = await waitFor(
    () => {
      const mine = otlp.spans.filter((s) => s.traceId === traceId);
      return mine.some((s) => s.name === "generation") && mine.some((s) => s.name.startsWith("POST ")) ? mine : null;
    },
    { timeoutMs: 20_000, what: "the trace's spans" },
  );
  const byName = (name: string) => spans.find((s) => s.name === name)!;
  const server = byName("POST /v1/chat/completions");
  expect(server.parentSpanId).toBe(clientSpan);
  expect(server.resource["service.instance.id"]).toBe("traced-router");
  expect(server.attributes).toMatchObject({
    "http.response.status_code": 200,
    "gen_ai.request.model": MODEL,
    "llm_router.node": "traced-node",
    "gen_ai.usage.output_tokens": 5,
  });
  expect(byName("balancer.pick").parentSpanId).toBe(server.spanId);
  const attempt = byName("chat traced-node");
  expect(attempt.parentSpanId).toBe(server.spanId);

  // the NATS hop: the node's spans are children of the router's attempt, exported by the node's process
  const job = byName("inference.chat");
  expect(job.parentSpanId).toBe(attempt.spanId);
  expect(job.resource["service.instance.id"]).toBe("traced-node");
  expect(job.attributes).toMatchObject({ "gen_ai.request.model": MODEL, "gen_ai.usage.output_tokens": 5 });
  expect(byName("prompt_eval").parentSpanId).toBe(job.spanId);
  expect(byName("generation").parentSpanId).toBe(job.spanId);
});

test("a request without a traceparent starts a trace of its own", async () => {
  const before = new Set(otlp.spans.map((s) => s.traceId));
  const res = await routerClient(router.url, { key }).json("POST", "/v1/chat/completions", {
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 2,
  });
  expect(res.status).toBe(200);
  const server = await waitFor(
    () =>
      otlp.spans.find(
        (s) =>
          !before.has(s.traceId) &&
          s.name === "POST /v1/chat/completions" &&
          s.attributes["llm_router.request_id"] === res.headers.get("x-request-id"),
      ) ?? null,
    { timeoutMs: 20_000, what: "the request's server span" },
  );
  expect(server.parentSpanId).toBe("");
  await waitFor(() => otlp.spans.some((s) => s.traceId === server.traceId && s.name === "inference.chat"), {
    what: "the node's span in the same trace",
  });
});
