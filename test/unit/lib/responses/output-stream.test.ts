import OpenAI from "openai";
import { accumulateResponse } from "openai/lib/responses/ResponseAccumulator";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import type { OpenAIChunk, OpenAIFinishReason } from "../../../../lib/providers/types";
import { formatEvent, type ResponsesEvent, ResponsesStreamWriter } from "../../../../lib/responses/output";
import { type Json, meta, RESPONSE_USAGE, USAGE } from "./output-fixtures";

// The event stream; whole answers are in output.test.ts.

type Delta = OpenAIChunk["choices"][number]["delta"];
const chunk = (delta: Delta, finish: OpenAIFinishReason | null = null, index = 0): OpenAIChunk => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  created: 1_700_000_000,
  model: "qwen3-8b",
  choices: [{ index, delta, logprobs: null, finish_reason: finish }],
});
const usageChunk = (): OpenAIChunk => ({ ...chunk({}), choices: [], usage: USAGE });
const text = (t: string) => chunk({ content: t });
const finish = (reason: OpenAIFinishReason) => chunk({}, reason);
const toolStart = (index: number, id: string, name: string, args = "") =>
  chunk({ tool_calls: [{ index, id, type: "function", function: { name, arguments: args } }] });
const toolArgs = (index: number, args: string) => chunk({ tool_calls: [{ index, function: { arguments: args } }] });

function run(chunks: OpenAIChunk[], opts: { end?: boolean; echo?: Record<string, unknown> } = {}) {
  const w = new ResponsesStreamWriter(meta(opts.echo));
  const events = chunks.flatMap((c) => w.push(c));
  if (opts.end) events.push(...w.end());
  return { w, events };
}
const types = (events: ResponsesEvent[]) => events.map((e) => e.data.type);
const ofType = (events: ResponsesEvent[], type: string): Json[] =>
  events.filter((e) => e.data.type === type).map((e) => e.data);

const TEXT_ITEM = [
  "response.output_item.added",
  "response.content_part.added",
  "response.output_text.delta",
  "response.output_text.delta",
  "response.output_text.done",
  "response.content_part.done",
  "response.output_item.done",
];
const callItem = (deltas: number) => [
  "response.output_item.added",
  ...Array<string>(deltas).fill("response.function_call_arguments.delta"),
  "response.function_call_arguments.done",
  "response.output_item.done",
];
const START = ["response.created", "response.in_progress"];

/** What every stream must satisfy: wire shape, numbering, and the SDK's own replay giving the final object. */
function checkStream(events: ResponsesEvent[], final: Json) {
  expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
  for (const e of events) expect(e.event).toBe(e.data.type);
  expect(types(events).slice(0, 2)).toEqual(START);
  const last = events[events.length - 1].data as Json;
  expect(last.response).toEqual(final);
  let snap: Json;
  for (const e of events) snap = accumulateResponse(e.data as unknown as ResponseStreamEvent, snap);
  const { output_text: _, ...accumulated } = snap;
  expect(accumulated).toEqual(final);
  // ids stay the same from added to done
  const added = ofType(events, "response.output_item.added").map((d) => [d.output_index, d.item.id]);
  const done = ofType(events, "response.output_item.done").map((d) => [d.output_index, d.item.id]);
  expect(done).toEqual(added);
  expect(added.map(([i]) => i)).toEqual(added.map((_, i) => i));
}

describe("ResponsesStreamWriter", () => {
  it("streams text: created, in_progress, the message's events, completed", () => {
    const { w, events } = run([
      chunk({ role: "assistant", content: "" }),
      text("Hel"),
      text("lo"),
      finish("stop"),
      usageChunk(),
    ]);
    expect(types(events)).toEqual([...START, ...TEXT_ITEM, "response.completed"]);
    checkStream(events, w.final);

    const [created, inProgress] = events.map((e) => e.data as Json);
    expect(created.response).toMatchObject({ id: "resp_0123", status: "in_progress", output: [], usage: null });
    expect(inProgress.response.status).toBe("in_progress");

    const [added] = ofType(events, "response.output_item.added");
    const id = added.item.id;
    expect(added).toMatchObject({
      output_index: 0,
      item: { type: "message", id, status: "in_progress", role: "assistant", content: [] },
    });
    expect(ofType(events, "response.content_part.added")[0]).toMatchObject({
      item_id: id,
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text: "", annotations: [] },
    });
    expect(ofType(events, "response.output_text.delta")).toEqual([
      expect.objectContaining({ item_id: id, output_index: 0, content_index: 0, delta: "Hel", logprobs: [] }),
      expect.objectContaining({ delta: "lo" }),
    ]);
    expect(ofType(events, "response.output_text.done")[0]).toMatchObject({ item_id: id, text: "Hello" });
    expect(ofType(events, "response.content_part.done")[0].part).toMatchObject({ type: "output_text", text: "Hello" });
    expect(ofType(events, "response.output_item.done")[0].item).toMatchObject({
      id,
      status: "completed",
      content: [{ type: "output_text", text: "Hello" }],
    });
    expect(w.final).toMatchObject({
      status: "completed",
      incomplete_details: null,
      usage: RESPONSE_USAGE,
      output: [{ id, content: [{ text: "Hello" }] }],
    });
  });

  it("streams text then two tool calls with fragmented arguments", () => {
    const { w, events } = run([
      text("Let"),
      text(" me look."),
      toolStart(0, "call_a", "get_weather"),
      toolArgs(0, '{"ci'),
      toolArgs(0, 'ty":"Pa'),
      toolArgs(0, 'ris"}'),
      toolStart(1, "call_b", "get_time", '{"tz"'),
      toolArgs(1, ':"CET"}'),
      finish("tool_calls"),
      usageChunk(),
    ]);
    expect(types(events)).toEqual([...START, ...TEXT_ITEM, ...callItem(3), ...callItem(2), "response.completed"]);
    checkStream(events, w.final);

    const added = ofType(events, "response.output_item.added");
    expect(added[1]).toMatchObject({
      output_index: 1,
      item: { type: "function_call", call_id: "call_a", name: "get_weather", arguments: "", status: "in_progress" },
    });
    expect(added[1].item.id).toMatch(/^fc_/);
    const deltas = ofType(events, "response.function_call_arguments.delta");
    expect(deltas.map((d) => [d.output_index, d.item_id, d.delta])).toEqual([
      [1, added[1].item.id, '{"ci'],
      [1, added[1].item.id, 'ty":"Pa'],
      [1, added[1].item.id, 'ris"}'],
      [2, added[2].item.id, '{"tz"'],
      [2, added[2].item.id, ':"CET"}'],
    ]);
    expect(ofType(events, "response.function_call_arguments.done")).toEqual([
      expect.objectContaining({ output_index: 1, name: "get_weather", arguments: '{"city":"Paris"}' }),
      expect.objectContaining({ output_index: 2, name: "get_time", arguments: '{"tz":"CET"}' }),
    ]);
    expect((w.final as Json).output).toEqual([
      expect.objectContaining({ type: "message", status: "completed" }),
      expect.objectContaining({ call_id: "call_a", arguments: '{"city":"Paris"}', status: "completed" }),
      expect.objectContaining({ call_id: "call_b", arguments: '{"tz":"CET"}', status: "completed" }),
    ]);
  });

  it("streams a tool call alone, with no message item", () => {
    const { w, events } = run([
      chunk({ role: "assistant", content: null }),
      toolStart(0, "call_x", "lookup"),
      toolArgs(0, '{"q":1}'),
      finish("tool_calls"),
      usageChunk(),
    ]);
    expect(types(events)).toEqual([...START, ...callItem(1), "response.completed"]);
    checkStream(events, w.final);
    expect((w.final as Json).output).toEqual([
      {
        type: "function_call",
        id: expect.stringMatching(/^fc_/),
        call_id: "call_x",
        name: "lookup",
        arguments: '{"q":1}',
        status: "completed",
      },
    ]);
  });

  it("closes items at the finish and holds response.completed until the usage chunk", () => {
    const w = new ResponsesStreamWriter(meta());
    const first = [...w.push(text("Hi")), ...w.push(finish("stop"))];
    expect(types(first)).toEqual([
      ...START,
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
    ]);
    expect(w.final).toBeNull();
    const last = w.push(usageChunk());
    expect(types(last)).toEqual(["response.completed"]);
    expect(last[0].data.sequence_number).toBe(first.length);
    expect((w.final as Json).usage).toEqual(RESPONSE_USAGE);
    checkStream([...first, ...last], w.final);
    expect(w.push(text("late"))).toEqual([]);
    expect(w.end()).toEqual([]);
  });

  it("is incomplete when the stream was cut by length", () => {
    const { w, events } = run([text("Once"), text(" upon"), finish("length"), usageChunk()]);
    expect(types(events)).toEqual([...START, ...TEXT_ITEM, "response.incomplete"]);
    checkStream(events, w.final);
    expect(ofType(events, "response.output_item.done")[0].item.status).toBe("incomplete");
    expect(w.final).toMatchObject({ status: "incomplete", incomplete_details: { reason: "max_output_tokens" } });
  });

  it("end() without a finish still closes the item and completes (usage null)", () => {
    const { w, events } = run([text("Hel"), text("lo")], { end: true });
    expect(types(events)).toEqual([...START, ...TEXT_ITEM, "response.completed"]);
    checkStream(events, w.final);
    expect(w.final).toMatchObject({ status: "completed", usage: null, output: [{ content: [{ text: "Hello" }] }] });
  });

  it("end() after a finish with no usage chunk sends the held completion", () => {
    const { w, events } = run([toolStart(0, "c1", "f", "{}"), finish("tool_calls")], { end: true });
    expect(types(events)).toEqual([...START, ...callItem(1), "response.completed"]);
    checkStream(events, w.final);
  });

  it("an empty stream gives an empty message", () => {
    const { w, events } = run([finish("stop"), usageChunk()]);
    expect(types(events)).toEqual([...START, ...TEXT_ITEM.filter((t) => !t.endsWith("delta")), "response.completed"]);
    checkStream(events, w.final);
    expect((w.final as Json).output[0].content[0].text).toBe("");
    const ended = run([], { end: true });
    expect(types(ended.events)).toEqual(types(events));
  });

  it("fail() sends response.failed with the error and the items so far", () => {
    const { w, events } = run([text("Par")]);
    const failed = w.fail("upstream went away", "server_error");
    expect(types(failed)).toEqual(["response.failed"]);
    const all = [...events, ...failed];
    expect(all.map((e) => e.data.sequence_number)).toEqual(all.map((_, i) => i));
    expect(w.final).toEqual((failed[0].data as Json).response);
    expect(w.final).toMatchObject({
      status: "failed",
      error: { code: "server_error", message: "upstream went away" },
      incomplete_details: null,
      output: [{ type: "message", status: "incomplete", content: [{ text: "Par" }] }],
    });
    expect(w.push(text("more"))).toEqual([]);
    expect(w.end()).toEqual([]);
    expect(w.fail("again", null)).toEqual([]);
  });

  it("fail() before any chunk still opens the stream", () => {
    const w = new ResponsesStreamWriter(meta());
    const events = w.fail("no node could take it", null);
    expect(types(events)).toEqual([...START, "response.failed"]);
    expect(w.final).toMatchObject({ status: "failed", error: { code: null }, output: [] });
  });

  it("follows choice 0 when chunks carry several choices", () => {
    const { w, events } = run([text("A"), chunk({ content: "B" }, null, 1), finish("stop"), usageChunk()]);
    checkStream(events, w.final);
    expect((w.final as Json).output[0].content[0].text).toBe("A");
  });

  it("does not change events already handed out", () => {
    const w = new ResponsesStreamWriter(meta());
    const events = [...w.push(text("a"))];
    const snapshot = JSON.stringify(events);
    w.push(text("b"));
    w.push(finish("stop"));
    w.push(usageChunk());
    expect(JSON.stringify(events)).toBe(snapshot);
  });

  it("echoes the request fields in every response it carries", () => {
    const { w, events } = run([text("x"), finish("stop"), usageChunk()], { echo: { instructions: "Hi", store: true } });
    expect((events[0].data as Json).response).toMatchObject({ instructions: "Hi", store: true });
    expect(w.final).toMatchObject({ instructions: "Hi", store: true });
  });
});

describe("formatEvent", () => {
  it("writes an SSE event", () => {
    const e: ResponsesEvent = {
      event: "response.output_text.delta",
      data: { type: "response.output_text.delta", sequence_number: 3, delta: "hi" },
    };
    expect(formatEvent(e)).toBe(
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":3,"delta":"hi"}\n\n',
    );
  });

  it("is read by the openai SDK's stream helper into the same final response", async () => {
    const { w, events } = run([
      text("Checking."),
      toolStart(0, "call_a", "get_weather", '{"city":'),
      toolArgs(0, '"Oslo"}'),
      finish("tool_calls"),
      usageChunk(),
    ]);
    const body = events.map(formatEvent).join("");
    const client = new OpenAI({
      apiKey: "test",
      baseURL: "http://router.test/v1",
      fetch: async () => new Response(body, { headers: { "content-type": "text/event-stream" } }),
    });
    const stream = client.responses.stream({ model: "qwen3-8b", input: "weather in Oslo?" });
    const seen: string[] = [];
    stream.on("event", (e) => seen.push(e.type));
    const final = await stream.finalResponse();
    expect(seen).toEqual(types(events));
    expect(final.output_text).toBe("Checking.");
    // the SDK adds output_text and its parsed_* fields
    expect(final).toMatchObject(w.final as Json);
    expect(final.output).toHaveLength(2);
  });
});
