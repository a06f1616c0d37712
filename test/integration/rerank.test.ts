/**
 * `POST /v1/rerank` on real routers: a node with the simulated engine
 * (scores from the words a document shares with the query) behind a router
 * that a second router reaches as an external runtime, so the request is
 * passed through to the runtime's own `/v1/rerank`; and a node running a
 * generated model on node-llama-cpp, which has no classification head: a
 * 400 naming `model`, beside a generated reranker (a ranking head), which
 * node-llama-cpp's ranking context scores with. Results sorted, `top_n` and
 * `return_documents` honoured, bad input a 400 naming the field.
 */
import fs from "node:fs";
import { routerClient, type RouterClient } from "../helpers/client";
import {
  createKey,
  freePort,
  login,
  startRouter,
  tempDir,
  writeModel,
  writeReranker,
  type Proc,
} from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const RANKER = "ranker";
const PLAIN = "tiny-plain";
const RERANKER = "tiny-reranker";
let back: { proc: Proc; url: string };
let front: { proc: Proc; url: string };
let plain: { proc: Proc; url: string };
let backUser: RouterClient;
let frontUser: RouterClient;
let plainUser: RouterClient;

const DOCS = ["the cat sat", "dogs bark at night", "a cat and a dog", "nothing here"];

beforeAll(async () => {
  const models = tempDir("rerank-models");
  fs.writeFileSync(`${models}/${RANKER}.gguf`, "simulated");
  back = await startRouter("rerank-back", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_ROUTER_PORT: String(await freePort()),
  });
  await back.proc.waitForOutput(/is online/);
  const backKey = await createKey(back.url);
  backUser = routerClient(back.url, { key: backKey });

  front = await startRouter("rerank-front", { SERVICES: "router", LLM_ROUTER_HEALTH_CHECK_INTERVAL: "1" });
  const admin = routerClient(front.url, { token: await login(front.url) });
  const reg = await admin.json("POST", "/api/nodes", { base_url: `${back.url}/v1`, api_key: backKey, name: "back" });
  expect(reg.status).toBe(201);
  frontUser = routerClient(front.url, { key: await createKey(front.url) });
  await waitFor(async () => (await frontUser.models()).some((m) => m.id === RANKER), { what: "the runtime's models" });

  const plainModels = tempDir("rerank-plain");
  writeModel(plainModels, PLAIN);
  writeReranker(plainModels, RERANKER);
  plain = await startRouter("rerank-plain", { LLM_NODE_MODELS_DIR: plainModels });
  await plain.proc.waitForOutput(/is online/);
  plainUser = routerClient(plain.url, { key: await createKey(plain.url) });
}, 120_000);

afterAll(async () => {
  await Promise.all([front?.proc.stop(), back?.proc.stop(), plain?.proc.stop()]);
});

test("scores documents against the query, highest first; top_n and return_documents honoured", async () => {
  const r = await backUser.json("POST", "/v1/rerank", { model: RANKER, query: "cat", documents: DOCS });
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ object: "list", model: RANKER });
  const results = r.body.results as Array<{ index: number; relevance_score: number }>;
  expect(results.map((x) => x.index)).toEqual([0, 2, 1, 3]);
  const scores = results.map((x) => x.relevance_score);
  expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  expect(r.body.usage.prompt_tokens).toBeGreaterThan(0);

  const top = await backUser.json("POST", "/v1/rerank", {
    model: RANKER,
    query: "cat",
    documents: DOCS.map((text) => ({ text })),
    top_n: 2,
    return_documents: true,
  });
  expect(top.body.results).toEqual([
    { index: 0, relevance_score: expect.any(Number), document: { text: "the cat sat" } },
    { index: 2, relevance_score: expect.any(Number), document: { text: "a cat and a dog" } },
  ]);
  expect(top.headers.get("x-router-node")).toBeTruthy();
});

test("through an external runtime: passed to its own /v1/rerank, answered the same", async () => {
  const direct = await backUser.json("POST", "/v1/rerank", { model: RANKER, query: "dog night", documents: DOCS });
  const via = await frontUser.json("POST", "/v1/rerank", { model: RANKER, query: "dog night", documents: DOCS });
  expect(via.status).toBe(200);
  expect(via.body.results).toEqual(direct.body.results);
  expect(via.headers.get("x-router-node")).toMatch(/^ext-/);
});

test("a generated reranker on node-llama-cpp: a score in [0, 1] per document, highest first, the same every time", async () => {
  const ask = () => plainUser.json("POST", "/v1/rerank", { model: RERANKER, query: "cats", documents: DOCS, top_n: 3 });
  const first = await ask();
  expect(first.status).toBe(200);
  const results = first.body.results as Array<{ index: number; relevance_score: number }>;
  expect(results).toHaveLength(3);
  for (const r of results) {
    expect(r.relevance_score).toBeGreaterThanOrEqual(0);
    expect(r.relevance_score).toBeLessThanOrEqual(1);
  }
  const scores = results.map((r) => r.relevance_score);
  expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  expect(new Set(results.map((r) => r.index)).size).toBe(3);
  expect((await ask()).body.results).toEqual(results);
  expect(first.body.usage.prompt_tokens).toBeGreaterThan(0);
});

test("a model that is no reranker: 400 naming model", async () => {
  const r = await plainUser.answer("POST", "/v1/rerank", { model: PLAIN, query: "q", documents: ["a", "b"] });
  expect(r.status).toBe(400);
  expect(r.body.error).toMatchObject({ param: "model", code: "model_not_reranker" });
});

test("bad input: a 400 naming the field, never a 500", async () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ model: RANKER, query: "q", documents: [] }, "documents"],
    [{ model: RANKER, query: "q", documents: Array.from({ length: 10_000 }, (_, i) => `d${i}`) }, "documents"],
    [{ model: RANKER, query: "", documents: ["a"] }, "query"],
    [{ model: RANKER, documents: ["a"] }, "query"],
    [{ model: RANKER, query: "q", documents: ["a", 42] }, "documents[1]"],
    [{ model: RANKER, query: "q", documents: ["a"], top_n: 0 }, "top_n"],
    [{ model: RANKER, query: "q", documents: ["a"], rank_fields: ["x"] }, "rank_fields"],
    [{ query: "q", documents: ["a"] }, "model"],
  ];
  for (const [body, param] of cases) {
    const r = await backUser.answer("POST", "/v1/rerank", body);
    expect({ param, status: r.status, got: r.body?.error?.param }).toEqual({ param, status: 400, got: param });
  }
  const cloud = await backUser.answer("POST", "/v1/rerank", { model: "openai:gpt-4o", query: "q", documents: ["a"] });
  expect(cloud.status).toBe(400);
});
