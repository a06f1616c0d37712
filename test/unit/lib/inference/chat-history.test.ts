import { chatHistory } from "../../../../lib/inference/chat-history";

describe("chatHistory: a conversation as node-llama-cpp's chat history", () => {
  test("roles map to system, user and model turns; a model turn is opened for the answer", () => {
    expect(
      chatHistory([
        { role: "system", content: "rules" },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "again" },
      ]),
    ).toEqual([
      { type: "system", text: "rules" },
      { type: "user", text: "hi" },
      { type: "model", response: ["hello"] },
      { type: "user", text: "again" },
      { type: "model", response: [] },
    ]);
  });

  test("tool calls become function calls of the turn, each with the result of the tool message answering it", () => {
    const h = chatHistory([
      { role: "user", content: "weather and time?" },
      {
        role: "assistant",
        content: "checking",
        toolCalls: [
          { id: "a", name: "weather", arguments: '{"city":"Oslo"}' },
          { id: "b", name: "time", arguments: "not json" },
        ],
      },
      { role: "tool", content: "sunny", toolCallId: "a" },
      { role: "tool", content: '{"h":9}', toolCallId: "b" },
      { role: "assistant", content: "Sunny, 9 o'clock." },
      { role: "user", content: "thanks" },
    ]);
    expect(h).toEqual([
      { type: "user", text: "weather and time?" },
      {
        type: "model",
        response: [
          "checking",
          { type: "functionCall", name: "weather", params: { city: "Oslo" }, result: "sunny", startsNewChunk: true },
          { type: "functionCall", name: "time", params: "not json", result: { h: 9 }, startsNewChunk: false },
          "Sunny, 9 o'clock.",
        ],
      },
      { type: "user", text: "thanks" },
      { type: "model", response: [] },
    ]);
  });

  test("a conversation that ends with tool results continues the model's turn (its answer comes next)", () => {
    const h = chatHistory([
      { role: "user", content: "q" },
      { role: "assistant", content: "", toolCalls: [{ id: "a", name: "f", arguments: "{}" }] },
      { role: "tool", content: "r", toolCallId: "a" },
    ]);
    expect(h).toHaveLength(2);
    expect(h[1]).toEqual({
      type: "model",
      response: [{ type: "functionCall", name: "f", params: {}, result: "r", startsNewChunk: true }],
    });
  });
});
