import { ToolCallStream } from "../../../../lib/inference/tool-call-stream";
import type { ToolCallFragment } from "../../../../lib/inference/types";

describe("ToolCallStream: node-llama-cpp's parameter chunks as OpenAI tool-call fragments", () => {
  test("the first fragment of a call has its id and name; whitespace around the JSON is not sent", () => {
    const sent: ToolCallFragment[] = [];
    const s = new ToolCallStream((f) => sent.push(f));
    for (const chunk of [" ", "{", ' "a"', ":", " 1", " ", "}", "\n", "\n"]) s.add(0, "f", chunk);
    const calls = s.finish([{ functionName: "f", params: { a: 1 } }]);
    expect(sent[0]).toEqual({ index: 0, id: calls[0].id, name: "f", arguments: "" });
    expect(calls[0].id).toMatch(/^call_[\w-]{16}$/);
    const text = sent.map((f) => f.arguments).join("");
    expect(text).toBe('{ "a": 1 }');
    expect(calls).toEqual([{ id: calls[0].id, name: "f", arguments: '{ "a": 1 }' }]);
  });

  test("calls keep their index and ids; a call without parameters gets {}", () => {
    const sent: ToolCallFragment[] = [];
    const s = new ToolCallStream((f) => sent.push(f));
    s.add(0, "a", '{"x":2}');
    const calls = s.finish([
      { functionName: "a", params: { x: 2 } },
      { functionName: "b", params: undefined },
    ]);
    expect(calls.map((c) => [c.name, c.arguments])).toEqual([
      ["a", '{"x":2}'],
      ["b", "{}"],
    ]);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    expect(sent.filter((f) => f.index === 1)).toEqual([
      { index: 1, id: calls[1].id, name: "b", arguments: "" },
      { index: 1, arguments: "{}" },
    ]);
  });
});
