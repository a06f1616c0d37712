/**
 * A small real cluster for the tests of what clients send: a NATS server, a
 * router and one inference node (real llama.cpp on a generated model with
 * a ChatML template), the official `openai` client with an API key, and a
 * login. Function-calling instructions take ~1,000 tokens of the context.
 */
import OpenAI from "openai";
import type { ChatCompletionTool } from "openai/resources/chat/completions";
import { routerClient, type RouterClient } from "./client";
import { createKey, login, startCli, startNats, startRouter, tempDir, writeModel, type Proc } from "./procs";
import { waitFor } from "./wait";

export interface SmallCluster {
  model: string;
  url: string;
  key: string;
  /** The official client, with the key. */
  client: OpenAI;
  /** With the key. */
  user: RouterClient;
  /** With an admin login. */
  admin: RouterClient;
  /** The router's process (its output). */
  router: Proc;
  stop(): Promise<void>;
}

/**
 * `nodes`: how many inference nodes serve the model (each `node-<name>-<i>`
 * past the first); `router`: more of the router's environment.
 */
export async function startSmallCluster(
  name: string,
  model: string,
  opts: { nodes?: number; router?: Record<string, string> } = {},
): Promise<SmallCluster> {
  const nats = await startNats();
  const cluster = { TRANSPORTER: nats.url, HEARTBEAT_INTERVAL: "1", HEARTBEAT_TIMEOUT: "3" };
  const models = tempDir(`${name}-models`);
  writeModel(models, model, { contextLength: 4096 });
  const nodes = Array.from({ length: opts.nodes ?? 1 }, (_, i) => {
    const id = i === 0 ? `node-${name}` : `node-${name}-${i + 1}`;
    return startCli(id, {
      ...cluster,
      SERVICES: "inference",
      NODEID: id,
      LLM_NODE_MODELS_DIR: models,
      LLM_NODE_PARALLEL: "2",
      LLM_NODE_CONTEXT_SIZE: "4096",
    });
  });
  const router = await startRouter("router", {
    ...cluster,
    SERVICES: "router",
    NODEID: `router-${name}`,
    ...opts.router,
  });
  const key = await createKey(router.url);
  const user = routerClient(router.url, { key });
  const admin = routerClient(router.url, { token: await login(router.url) });
  await waitFor(async () => (await user.models()).find((m) => m.id === model)?.nodes.length === nodes.length, {
    timeoutMs: 60_000,
    what: "the nodes serving the model",
  });
  return {
    model,
    url: router.url,
    key,
    client: new OpenAI({ baseURL: `${router.url}/v1`, apiKey: key, maxRetries: 0 }),
    user,
    admin,
    router: router.proc,
    async stop() {
      await Promise.all([router.proc.stop(), ...nodes.map((n) => n.stop())]);
      await nats.proc.stop();
    },
  };
}

/** Two function tools whose strings are bounded (a random-weight model then ends every call). */
export const WEATHER_TOOL: ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", maxLength: 16 },
        unit: { enum: ["celsius", "fahrenheit"] },
        days: { type: "integer" },
      },
      required: ["city", "unit", "days"],
      additionalProperties: false,
    },
  },
};
export const TIME_TOOL: ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_time",
    description: "The time in a zone",
    parameters: { type: "object", properties: { zone: { type: "string", maxLength: 8 } }, required: ["zone"] },
  },
};
export const schemaOf = (t: ChatCompletionTool) => (t as { function: { parameters: object } }).function.parameters;
