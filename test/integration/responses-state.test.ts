/**
 * Conversation state in the Responses API: stored responses read back
 * (`GET /v1/responses/{id}`, its input items), deleted, refused to another
 * API key, and continued with `previous_response_id` on the node that holds
 * the conversation, with the official `openai` client against a router and
 * two inference nodes over a real NATS server (real llama.cpp, random weights).
 */
import OpenAI from "openai";
import { routerClient, type RouterClient } from "../helpers/client";
import { schemaOf, startSmallCluster, WEATHER_TOOL, type SmallCluster } from "../helpers/cluster";
import { createKey } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const MODEL = "tiny-state";
let c: SmallCluster;
let client: OpenAI;
/** Another API key (the same admin made it): none of the first key's responses are its. */
let other: RouterClient;
let otherClient: OpenAI;

beforeAll(async () => {
  // round robin would alternate the nodes: a continuation must still go where its conversation is
  c = await startSmallCluster("responses-state", MODEL, {
    nodes: 2,
    router: { LLM_ROUTER_LOAD_BALANCER_MODE: "round_robin" },
  });
  client = c.client;
  const key = await createKey(c.url);
  other = routerClient(c.url, { key });
  otherClient = new OpenAI({ baseURL: `${c.url}/v1`, apiKey: key, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await c?.stop();
});

const statusOf = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (err: { status?: number }) => err.status,
  );

describe("stored responses", () => {
  test("stored by default: GET answers the response the client got, input_items its input with ids", async () => {
    const r = await client.responses.create({ model: MODEL, input: "Remember me.", max_output_tokens: 4 });
    expect((r as { store?: boolean }).store).toBe(true);
    // the client adds output_text to what it reads
    expect(await client.responses.retrieve(r.id)).toEqual(r);
    const items = await client.responses.inputItems.list(r.id);
    expect(items.data).toHaveLength(1);
    expect(items.data[0]).toMatchObject({ type: "message", role: "user", content: "Remember me." });
    expect(items.data[0].id).toMatch(/^msg_/);
  });

  test("streamed: the final response.completed is what GET answers", async () => {
    const schema = {
      type: "object",
      properties: { ok: { type: "boolean" } },
      required: ["ok"],
      additionalProperties: false,
    };
    const stream = await client.responses.create({
      model: MODEL,
      input: "Is it ok? JSON.",
      text: { format: { type: "json_schema", name: "answer", schema, strict: true } },
      stream: true,
    });
    let final: Record<string, unknown> | null = null;
    for await (const ev of stream) if (ev.type === "response.completed") final = ev.response as never;
    expect(final).not.toBeNull();
    // read at once: the stream's last event left only once the response was kept (raw: the client adds output_text)
    const got = await c.user.json("GET", `/v1/responses/${String(final!.id)}`);
    expect(got.body).toEqual(final);
  });

  test("store: false is not retrievable, and cannot be continued", async () => {
    const r = await client.responses.create({ model: MODEL, input: "Forget me.", store: false, max_output_tokens: 2 });
    expect((r as { store?: boolean }).store).toBe(false);
    expect(await statusOf(client.responses.retrieve(r.id))).toBe(404);
    const next = await c.user.answer("POST", "/v1/responses", {
      model: MODEL,
      input: "And now?",
      previous_response_id: r.id,
    });
    expect(next.status).toBe(400);
    expect(next.body.error).toMatchObject({ param: "previous_response_id", code: "previous_response_not_found" });
  });

  test("DELETE removes it: GET, input_items and a second DELETE answer 404", async () => {
    const r = await client.responses.create({ model: MODEL, input: "Delete me.", max_output_tokens: 2 });
    const gone = await c.user.answer("DELETE", `/v1/responses/${r.id}`);
    expect(gone).toMatchObject({ status: 200, body: { id: r.id, object: "response", deleted: true } });
    expect(await statusOf(client.responses.retrieve(r.id))).toBe(404);
    expect((await c.user.answer("GET", `/v1/responses/${r.id}/input_items`)).status).toBe(404);
    expect((await c.user.answer("DELETE", `/v1/responses/${r.id}`)).status).toBe(404);
  });

  test("another API key gets 404 for every route, and 400 continuing it; the owner still has it", async () => {
    const r = await client.responses.create({ model: MODEL, input: "Mine only.", max_output_tokens: 2 });
    for (const [method, path] of [
      ["GET", `/v1/responses/${r.id}`],
      ["GET", `/v1/responses/${r.id}/input_items`],
      ["DELETE", `/v1/responses/${r.id}`],
    ] as const) {
      const a = await other.answer(method, path);
      expect({ path, status: a.status }).toEqual({ path, status: 404 });
      expect(JSON.stringify(a.body)).not.toContain("Mine only");
    }
    for (const store of [true, false]) {
      const next = await statusOf(
        otherClient.responses.create({ model: MODEL, input: "Go on.", previous_response_id: r.id, store }),
      );
      expect(next).toBe(400);
    }
    expect((await client.responses.retrieve(r.id)).id).toBe(r.id);
  });

  test("previous_response_id over three turns: each continues the conversation, on the same node", async () => {
    const turns: Array<{ id: string; node: string | null; input: number }> = [];
    let previous: string | undefined;
    for (const text of ["My name is Ada.", "What is my name?", "Say it again."]) {
      const { data, response } = await client.responses
        .create({ model: MODEL, input: text, previous_response_id: previous, max_output_tokens: 3 })
        .withResponse();
      turns.push({ id: data.id, node: response.headers.get("x-router-node"), input: data.usage!.input_tokens });
      expect(data.previous_response_id).toBe(previous ?? null);
      previous = data.id;
    }
    // the whole conversation went to the model each time
    expect(turns[1].input).toBeGreaterThan(turns[0].input + 3);
    expect(turns[2].input).toBeGreaterThan(turns[1].input + 3);
    expect(new Set(turns.map((t) => t.node)).size).toBe(1);
    // input_items lists a turn's own input only
    const items = await client.responses.inputItems.list(turns[2].id);
    expect(items.data.map((i) => (i as { content?: unknown }).content)).toEqual(["Say it again."]);
  });

  test("a client that leaves mid-stream stops the generation on its node", async () => {
    const ac = new AbortController();
    const res = await c.user.request(
      "POST",
      "/v1/responses",
      { model: MODEL, input: "Talk for a long time.", stream: true, max_output_tokens: 3000 },
      { signal: ac.signal },
    );
    const node = res.headers.get("x-router-node")!;
    const reader = res.body!.getReader();
    await reader.read();
    await waitFor(async () => (await c.admin.nodes()).find((n) => n.id === node)?.active_requests === 1, {
      what: "the node to report the request active",
    });
    ac.abort();
    // well before 3,000 tokens could be done
    await waitFor(async () => (await c.admin.nodes()).find((n) => n.id === node)?.active_requests === 0, {
      timeoutMs: 10_000,
      what: "the node to stop generating",
    });
  });

  test("a function call's output continues its response by previous_response_id", async () => {
    const weather = {
      type: "function" as const,
      name: "get_weather",
      parameters: schemaOf(WEATHER_TOOL) as Record<string, unknown>,
      strict: true,
    };
    const first = await client.responses.create({
      model: MODEL,
      input: "Weather in Oslo?",
      tools: [weather],
      tool_choice: "required",
      temperature: 1,
    });
    const call = first.output.find((o) => o.type === "function_call") as { call_id: string };
    const second = await client.responses.create({
      model: MODEL,
      previous_response_id: first.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: '{"temp": 21}' }],
      tools: [weather],
      tool_choice: "none",
      max_output_tokens: 3,
    });
    expect(second.output.map((o) => o.type)).toEqual(["message"]);
    // without the previous response, the output answers no call
    const alone = await c.user.answer("POST", "/v1/responses", {
      model: MODEL,
      input: [{ type: "function_call_output", call_id: call.call_id, output: "{}" }],
    });
    expect(alone.status).toBe(400);
  });
});
