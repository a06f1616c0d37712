/**
 * A node sends a stream's tokens over NATS in batches: the chunks of all the
 * streams it sends one router share one message per window (its token lane,
 * lib/cluster/token-lanes.ts). The client still gets one SSE event per token,
 * in order, while far fewer messages cross NATS than there are tokens (counted by the nats-server's own
 * monitoring, /varz). A private nats-server, an inference node on the
 * simulated engine at 1 ms a token (a fast GPU's pace), a router.
 */
import {
  createKey,
  freePort,
  startCli,
  startNats,
  startRouter,
  tempDir,
  writeModel,
  type Proc,
} from "../helpers/procs";
import { routerClient, sse, type RouterClient } from "../helpers/client";
import { waitFor } from "../helpers/wait";

const MODEL = "batching-model";
const TOKENS = 200;
let nats: { proc: Proc; url: string };
let monitor: string;
let node: Proc;
let router: { proc: Proc; url: string };
let user: RouterClient;
let key: string;

/** Messages the nats-server has received from its clients so far. */
async function messagesIn(): Promise<number> {
  return ((await (await fetch(`${monitor}/varz`)).json()) as { in_msgs: number }).in_msgs;
}

beforeAll(async () => {
  const monitorPort = await freePort();
  nats = await startNats(undefined, { monitorPort });
  monitor = `http://127.0.0.1:${monitorPort}`;
  const models = tempDir("batching-models");
  writeModel(models, MODEL);
  node = startCli("node", {
    TRANSPORTER: nats.url,
    SERVICES: "inference",
    NODEID: "node-1",
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_NODE_INSTANT_MS_PER_TOKEN: "1",
    LLM_NODE_STREAM_BATCH_MS: "5",
    LLM_NODE_STREAM_BATCH_CHUNKS: "16",
    LLM_NODE_PARALLEL: "32",
    HEARTBEAT_INTERVAL: "1",
  });
  // a killed node is dropped after 3 s without its heartbeat (the last test)
  router = await startRouter("router", {
    TRANSPORTER: nats.url,
    SERVICES: "router",
    NODEID: "router-1",
    HEARTBEAT_INTERVAL: "1",
    HEARTBEAT_TIMEOUT: "3",
  });
  key = await createKey(router.url);
  user = routerClient(router.url, { key });
  await waitFor(async () => (await user.models()).some((m) => m.id === MODEL), {
    timeoutMs: 30_000,
    what: `${MODEL} at the router`,
  });
}, 60_000);

afterAll(async () => {
  await router?.proc.stop();
  await node?.stop();
  await nats?.proc.stop();
});

test("a streamed chat arrives token by token while its tokens cross NATS in batches", async () => {
  const before = await messagesIn();
  const r = await user.chat({
    model: MODEL,
    messages: [{ role: "user", content: "Count." }],
    max_tokens: TOKENS,
    stream: true,
    stream_options: { include_usage: true },
  });
  expect(r.status).toBe(200);
  const { chunks, done } = sse(await r.text());
  const after = await messagesIn();

  expect(done).toBe(true);
  // one event a token, in order: the role with the first, the finish reason after the last, then the usage
  const texts = chunks.filter((c) => c.choices?.[0]?.delta?.content).map((c) => c.choices[0].delta.content);
  expect(texts).toEqual(Array.from({ length: TOKENS }, () => "x"));
  expect(chunks[0].choices[0].delta.role).toBe("assistant");
  expect(chunks.at(-2).choices[0].finish_reason).toBe("length");
  expect(chunks.at(-1).usage.completion_tokens).toBe(TOKENS);
  // without batches every token is a message of its own (200, plus the request, heartbeats...)
  expect(after - before).toBeLessThan(TOKENS / 2);
});

test("many streams at once share their lane's messages: fewer messages than streams, every token delivered", async () => {
  const STREAMS = 30;
  const EACH = 60;
  const before = await messagesIn();
  const answers = await Promise.all(
    Array.from({ length: STREAMS }, async () => {
      const r = await user.chat({
        model: MODEL,
        messages: [{ role: "user", content: "Count." }],
        max_tokens: EACH,
        stream: true,
      });
      expect(r.status).toBe(200);
      return sse(await r.text());
    }),
  );
  const after = await messagesIn();
  for (const { chunks, done } of answers) {
    expect(done).toBe(true);
    expect(chunks.filter((c) => c.choices?.[0]?.delta?.content).length).toBe(EACH);
    expect(chunks.at(-1).choices[0].finish_reason).toBe("length");
  }
  // a stream of its own per request would take at least one message a window each (60 ms of tokens: 12 windows),
  // 360 in all; one lane for all of them takes about one a window, plus each request's call and answer
  expect(after - before).toBeLessThan(STREAMS * 6);
});

test("a node killed mid-stream: the stream ends with a node_lost error event, not the idle timeout", async () => {
  const res = await fetch(`${router.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: MODEL,
      messages: [{ role: "user", content: "Count." }],
      max_tokens: 12_000,
      stream: true,
    }),
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  // tokens are flowing over the lane
  while (!text.includes('"content":"x')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  node.child.kill("SIGKILL");
  await node.exited;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  const { done, chunks } = sse(text);
  expect(done).toBe(true);
  expect(chunks.at(-1)).toEqual({
    error: expect.objectContaining({ code: "node_lost", message: expect.stringContaining("node-1") }),
  });
}, 60_000);
