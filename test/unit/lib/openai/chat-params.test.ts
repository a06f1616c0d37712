import { CHAT_PARAMS, COMPLETION_PARAMS, refuseOnNode } from "../../../../lib/openai/chat-params";

const refusal = (body: Record<string, unknown>, op: "chat" | "completion" = "chat") => {
  try {
    refuseOnNode(body, op);
    return null;
  } catch (err) {
    const e = err as { code: number; type: string; data: { param: string } };
    return { status: e.code, code: e.type, param: e.data.param };
  }
};

describe("what a local node does with each OpenAI parameter", () => {
  test("honoured and ignored parameters pass; null counts as unset", () => {
    expect(
      refusal({ model: "m", messages: [], tools: [], user: "u", metadata: {}, store: true, logprobs: null }),
    ).toBeNull();
  });

  test("a refused parameter set to its default passes; set to anything else it is a 400 naming it", () => {
    expect(refusal({ n: 3, logprobs: false, modalities: ["text"], logit_bias: {}, top_logprobs: 0 })).toBeNull();
    for (const [key, value] of Object.entries({
      logprobs: true,
      top_logprobs: 3,
      modalities: ["text", "audio"],
      audio: { voice: "x" },
      prediction: { type: "content", content: "x" },
      web_search_options: {},
      reasoning_effort: "low",
      verbosity: "low",
      functions: [{ name: "f" }],
      function_call: "auto",
    })) {
      expect(refusal({ [key]: value })).toEqual({ status: 400, code: "unsupported_parameter", param: key });
    }
  });

  test("a parameter OpenAI does not have is refused, as OpenAI refuses it", () => {
    expect(refusal({ top_k: 40 })).toEqual({ status: 400, code: "unsupported_parameter", param: "top_k" });
    expect(refusal({ constructor: 1 })).toEqual({ status: 400, code: "unsupported_parameter", param: "constructor" });
  });

  test("legacy completions: echo, suffix, best_of and logprobs are refused when asked for", () => {
    expect(
      refusal({ model: "m", prompt: "p", echo: false, best_of: 1, suffix: "", logit_bias: { "1": 5 } }, "completion"),
    ).toBeNull();
    expect(refusal({ echo: true }, "completion")?.param).toBe("echo");
    expect(refusal({ suffix: "x" }, "completion")?.param).toBe("suffix");
    expect(refusal({ logprobs: 2 }, "completion")?.param).toBe("logprobs");
  });

  test("every parameter has a reason when it is not honoured", () => {
    for (const table of [CHAT_PARAMS, COMPLETION_PARAMS]) {
      for (const [name, p] of Object.entries(table)) {
        if (p.node !== "honoured") expect({ name, note: p.note }).toEqual({ name, note: expect.any(String) });
      }
    }
  });
});
