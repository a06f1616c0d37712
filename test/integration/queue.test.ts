/**
 * The router's wait queue, on a real router with one inference slot: requests
 * wait in order while the slot is busy, and past the limit get a 503 at once.
 */
import { routerClient, type RouterClient } from "../helpers/client";
import { createKey, startRouter, tempDir, writeModel, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-queue";
let router: { proc: Proc; url: string };
/** With the API key; its chat() asks MODEL "hi". */
let user: RouterClient;

async function queued(): Promise<number> {
  return (await routerClient(router.url).json("GET", "/health")).body.queued_requests;
}

beforeAll(async () => {
  const models = tempDir("queue-models");
  writeModel(models, MODEL, { contextLength: 16384 });
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_PARALLEL: "1",
    LLM_NODE_CONTEXT_SIZE: "16384",
    LLM_ROUTER_QUEUE_LIMIT: "2",
  });
  await router.proc.waitForOutput(/is online/);
  user = routerClient(router.url, {
    key: await createKey(router.url),
    chat: { model: MODEL, messages: [{ role: "user", content: "hi" }] },
  });
}, 60_000);

afterAll(async () => {
  await router?.proc.stop();
});

test("requests wait in order while the only slot is busy; past the limit, 503 with Retry-After", async () => {
  // occupy the only slot with a generation that would run for minutes
  const hog = new AbortController();
  const long = await user.chat({ stream: true, max_tokens: 12_000 }, { signal: hog.signal });
  await long.body!.getReader().read();

  const done: string[] = [];
  const first = user.chat({ max_tokens: 5 }).then(async (r) => (done.push("first"), r.status));
  await waitFor(async () => (await queued()) === 1, { what: "the first request to queue" });
  const second = user.chat({ max_tokens: 5 }).then(async (r) => (done.push("second"), r.status));
  await waitFor(async () => (await queued()) === 2, { what: "the second request to queue" });

  const third = await user.chat({ max_tokens: 5 });
  expect(third.status).toBe(503);
  expect(third.headers.get("retry-after")).toBe("1");
  expect(((await third.json()) as { error: { code: string } }).error.code).toBe("queue_full");

  hog.abort();
  expect(await Promise.all([first, second])).toEqual([200, 200]);
  expect(done).toEqual(["first", "second"]);
  expect(await queued()).toBe(0);
});
