/**
 * A node answers a router over its token lane only when it knows that router
 * listens there (its api's `lanes.chunks` in the router's own group): a
 * router that has just started, whose INFO the node has not had yet, gets
 * the stream itself; an event no one is known to listen to is dropped, and
 * its first chunks with it (bench/RESULTS.md, session 18). Real inference
 * service (the instant engine) and Moleculer's in-memory transporter.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import type { LaneEntry } from "../../lib/cluster/token-lanes";
import { chatJob } from "../../lib/openai/jobs";
import type { ChatBody } from "../../lib/openai/schemas";
import { waitFor } from "../helpers/wait";

const MODEL = "lane-model";
const saved = { ...process.env };
let dir: string;
let node: ServiceBroker;
let router: ServiceBroker;

function broker(nodeID: string): ServiceBroker {
  return new ServiceBroker({ nodeID, namespace: "lane-listener", transporter: "Fake", logger: false });
}

/** A streamed chat of 3 tokens, as a router asks for it over a lane. */
function streamedChat(): Promise<unknown> {
  const job = {
    ...chatJob({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 3 } as ChatBody),
    stream: true,
  };
  return router.call("inference.chat", job, { nodeID: "lane-node", meta: { lane: true, laneTokens: true } });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "lane-listener-"));
  fs.writeFileSync(path.join(dir, `${MODEL}.gguf`), "");
  Object.assign(process.env, {
    LLM_NODE_ENGINE: "instant",
    LLM_NODE_DEMO_MODEL: "false",
    LLM_NODE_GPU: "false",
    LLM_NODE_MODELS_DIR: dir,
    LLM_NODE_INSTANT_MS_PER_TOKEN: "1",
    LLM_NODE_STREAM_BATCH_MS: "5",
  });
  node = broker("lane-node");
  node.createService(require("../../services/inference.service").default as ServiceSchema); // eslint-disable-line @typescript-eslint/no-require-imports
  router = broker("lane-router");
  await Promise.all([node.start(), router.start()]);
  await router.waitForServices("inference");
}, 30_000);

afterAll(async () => {
  await Promise.all([node.stop(), router.stop()]);
  process.env = saved;
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a router the node does not know to listen on its lane gets the stream itself, every chunk whole", async () => {
  const answer = await streamedChat();
  expect(answer).toBeInstanceOf(Readable);
  const chunks: unknown[] = [];
  for await (const item of answer as Readable) chunks.push(...(Array.isArray(item) ? item : [item]));
  expect(chunks.every((c) => typeof c === "object" && c !== null)).toBe(true);
  const text = chunks.map(
    (c) => (c as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? "",
  );
  expect(text.filter(Boolean)).toHaveLength(3);
});

test("once it listens, the stream comes over the lane: the first chunk whole, then each token as its text", async () => {
  const got: LaneEntry[] = [];
  router.createService({
    name: "lane-listener",
    events: {
      "lanes.chunks": {
        group: "lane-router",
        handler: (ctx) => void got.push(...(ctx.params as { entries: LaneEntry[] }).entries),
      },
    },
  });
  await waitFor(
    () =>
      (
        node.registry as unknown as { events: { get(e: string, g: string): { hasAvailable(): boolean } | undefined } }
      ).events
        .get("lanes.chunks", "lane-router")
        ?.hasAvailable() === true,
    { what: "the node to learn the listener" },
  );
  expect(await streamedChat()).toEqual({ lane: true });
  await waitFor(() => got.some((e) => e[2] === 1), { what: "the end of the lane stream" });
  const items = got.flatMap((e) => e[1]);
  expect(typeof items[0]).toBe("object");
  // the opening carries the first token; the two others go as their text
  expect(items.filter((i) => typeof i === "string")).toHaveLength(2);
});
