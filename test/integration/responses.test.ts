/**
 * OpenAI's Responses API (`POST /v1/responses`) on a local model: the
 * official `openai` client's `responses.create` and `responses.stream`, a
 * coding agent's request shape, and the Agents SDK's default (Responses)
 * model, against a router and an inference node over a real NATS server,
 * real llama.cpp on a random-weight model.
 */
import { Agent, run, setDefaultOpenAIClient, setTracingDisabled, tool } from "@openai/agents";
import Ajv from "ajv";
import type OpenAI from "openai";
import { z } from "zod";
import { schemaOf, startSmallCluster, WEATHER_TOOL, type SmallCluster } from "../helpers/cluster";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-responses";
let c: SmallCluster;
let client: OpenAI;
const ajv = new Ajv({ strict: false });
const weather = {
  type: "function" as const,
  name: "get_weather",
  description: "The weather in a city",
  parameters: schemaOf(WEATHER_TOOL) as Record<string, unknown>,
  strict: true,
};

beforeAll(async () => {
  c = await startSmallCluster("responses", MODEL);
  client = c.client;
}, 90_000);

afterAll(async () => {
  await c?.stop();
});

type Event = { type: string; sequence_number: number } & Record<string, unknown>;

describe("the Responses API on a local model", () => {
  test("responses.create: a message with output_text; max_output_tokens ends it as incomplete", async () => {
    const r = await client.responses.create({
      model: MODEL,
      instructions: "Be brief.",
      input: "Hello!",
      max_output_tokens: 8,
    });
    expect(r.id).toMatch(/^resp_/);
    expect(r.object).toBe("response");
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.output[0]).toMatchObject({ type: "message", role: "assistant" });
    expect(r.output_text).toMatch(/^[\x20-\x7e]{8}$/);
    expect(r.usage).toMatchObject({ output_tokens: 8 });
    expect(r.usage!.input_tokens).toBeGreaterThan(5);
    expect(r.instructions).toBe("Be brief.");
  });

  test("streamed: every event in the order the SDK expects, sequence numbers rising, the final response carried", async () => {
    // a random-weight model never ends text by itself: max_output_tokens ends it (response.incomplete)
    const stream = await client.responses.create({
      model: MODEL,
      input: "Stream, please.",
      stream: true,
      max_output_tokens: 12,
    });
    const events: Event[] = [];
    for await (const ev of stream) events.push(ev as unknown as Event);
    const types = events.map((e) => e.type);
    expect(types.slice(0, 4)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
    ]);
    expect(types.slice(-4)).toEqual([
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete",
    ]);
    expect(types.slice(4, -4).every((t) => t === "response.output_text.delta")).toBe(true);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta);
    const done = events.find((e) => e.type === "response.output_text.done")!;
    expect(deltas.join("")).toBe(done.text);
    const final = events.at(-1)!.response as {
      status: string;
      incomplete_details: unknown;
      output: Array<{ content: Array<{ text: string }> }>;
      usage: { output_tokens: number };
    };
    expect(final.status).toBe("incomplete");
    expect(final.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(final.output[0].content[0].text).toBe(done.text);
    expect(final.usage.output_tokens).toBe(12);
  });

  test("a forced function call (responses.stream), then its function_call_output continues the conversation", async () => {
    const stream = client.responses.stream({
      model: MODEL,
      input: [{ role: "user", content: "Weather in Oslo?" }],
      tools: [weather],
      tool_choice: "required",
      temperature: 1,
    });
    let args = "";
    stream.on("response.function_call_arguments.delta", (e) => (args += e.delta));
    const first = await stream.finalResponse();
    const call = first.output.find((o) => o.type === "function_call") as {
      call_id: string;
      name: string;
      arguments: string;
    };
    expect(call.name).toBe("get_weather");
    expect(call.arguments).toBe(args);
    expect(ajv.validate(weather.parameters, JSON.parse(call.arguments))).toBe(true);

    const second = await client.responses.create({
      model: MODEL,
      input: [
        { role: "user", content: "Weather in Oslo?" },
        { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: "function_call_output", call_id: call.call_id, output: '{"temp": 21}' },
      ],
      tools: [weather],
      tool_choice: "none",
      max_output_tokens: 6,
    });
    expect(second.output.map((o) => o.type)).toEqual(["message"]);
    expect(second.output_text).toHaveLength(6);
  });

  test("text.format json_schema: the output text validates", async () => {
    const schema = {
      type: "object",
      properties: { name: { type: "string", maxLength: 10 }, age: { type: "integer" } },
      required: ["name", "age"],
      additionalProperties: false,
    };
    const r = await client.responses.create({
      model: MODEL,
      input: "A person, as JSON.",
      text: { format: { type: "json_schema", name: "person", schema, strict: true } },
      temperature: 1,
    });
    expect(r.status).toBe("completed");
    expect(ajv.validate(schema, JSON.parse(r.output_text))).toBe(true);
  });

  test("a coding agent's turn (stream, store false, hosted tools, reasoning, include) completes", async () => {
    const res = await c.user.post("/v1/responses", {
      model: MODEL,
      instructions: "You are a coding agent.",
      input: [
        { type: "message", role: "developer", content: [{ type: "input_text", text: "Work in /repo." }] },
        { type: "message", role: "user", content: [{ type: "input_text", text: "List the files." }] },
        { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "opaque" },
        { type: "function_call", call_id: "call_1", name: "shell", arguments: '{"command":["ls"]}' },
        { type: "function_call_output", call_id: "call_1", output: "README.md\nsrc" },
      ],
      tools: [
        {
          type: "function",
          name: "shell",
          description: "Runs a command",
          parameters: {
            type: "object",
            properties: { command: { type: "array", items: { type: "string", maxLength: 20 }, maxItems: 4 } },
            required: ["command"],
            additionalProperties: false,
          },
          strict: false,
        },
        { type: "web_search" },
      ],
      tool_choice: "auto",
      parallel_tool_calls: true,
      reasoning: { summary: "auto" },
      store: false,
      stream: true,
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "agent-session-1",
      max_output_tokens: 16,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-router-dropped-tools")).toBe("web_search");
    const text = await res.text();
    const types = [...text.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    expect(types[0]).toBe("response.created");
    expect(["response.completed", "response.incomplete"]).toContain(types.at(-1));
    // history names the tools left out
    const record = await waitFor(
      async () =>
        (await c.admin.json("GET", "/api/dashboard/request-responses?kind=responses&q=agent-session-1")).body
          .records[0],
      { timeoutMs: 10_000, what: "the agent's turn in history" },
    );
    expect(record.dropped_tools).toEqual(["web_search"]);
  });

  test("recorded in history as kind responses", async () => {
    const marker = `responses-${Date.now()}`;
    await client.responses.create({ model: MODEL, input: marker, max_output_tokens: 2 });
    const record = await waitFor(
      async () => (await c.admin.json("GET", `/api/dashboard/request-responses?q=${marker}`)).body.records[0],
      { timeoutMs: 10_000, what: "the request in history" },
    );
    expect(record.kind).toBe("responses");
  });

  test("bad input: an unknown item type, an output for no call, a forced hosted tool, an unknown previous_response_id", async () => {
    const ask = (body: Record<string, unknown>) => c.user.answer("POST", "/v1/responses", { model: MODEL, ...body });
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ input: [{ type: "telepathy" }] }, 400, "input[0].type"],
      [{ input: [{ type: "function_call_output", call_id: "nope", output: "x" }] }, 400, "input[0].call_id"],
      [{ input: "hi", tools: [{ type: "web_search" }], tool_choice: { type: "web_search" } }, 400, "tool_choice"],
      [{ input: "hi", previous_response_id: "resp_unknown" }, 400, "previous_response_id"],
    ];
    for (const [body, status, param] of cases) {
      const r = await ask(body);
      expect({ status: r.status, param: r.body?.error?.param }).toEqual({ status, param });
    }
  });
});

describe("the OpenAI Agents SDK with its default (Responses) model", () => {
  test("an agent calls its tool and finishes with the tool's answer", async () => {
    setTracingDisabled(true);
    setDefaultOpenAIClient(client as never);
    const seen: string[] = [];
    const getWeather = tool({
      name: "get_weather",
      description: "The weather in a city",
      parameters: z.object({ city: z.string().max(12) }),
      execute: async ({ city }) => {
        seen.push(city);
        return `sunny in ${city}`;
      },
    });
    const agent = new Agent({
      name: "weather",
      instructions: "Answer with the weather.",
      model: MODEL,
      modelSettings: { toolChoice: "required", temperature: 1, store: false },
      // a random-weight model never ends free text by itself: the tool's answer is the agent's
      toolUseBehavior: "stop_on_first_tool",
      tools: [getWeather],
    });
    const result = await run(agent, "Weather in Lima?", { maxTurns: 2 });
    expect(seen).toHaveLength(1);
    expect(result.finalOutput).toBe(`sunny in ${seen[0]}`);
    expect(result.newItems.map((i) => i.type)).toEqual(["tool_call_item", "tool_call_output_item"]);
  });
});
