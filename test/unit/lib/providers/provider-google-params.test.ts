import { google } from "../../../../lib/providers/google";
import { REFUSED, UNSUPPORTED } from "../../../../lib/providers/google-params";
import { UNSUPPORTED as ANTHROPIC_UNSUPPORTED } from "../../../../lib/providers/anthropic-params";
import { openai } from "../../../../lib/providers/openai";
import { cloudParamSupport, refusalReason } from "../../../../lib/providers/params";
import { OPENAI_CHAT_PARAMS } from "../../../../lib/providers/types";
import { googleFixture } from "../../../helpers/standins/google";
import { contentOf, data, finishes, googleSetup, type Json } from "./helpers";

// What Google does with each OpenAI parameter that is not a message or a tool (lib/providers/google-params.ts),
// and every cloud's parameter table (lib/providers/params.ts)
const { meta, body, thrown, fixtureEvents, translate } = googleSetup;

describe("google request", () => {
  test("sampling parameters go to generationConfig", () => {
    expect(
      body({ max_tokens: 50, max_completion_tokens: 100, temperature: 0, top_p: 0.9, stop: "END", seed: 7 }),
    ).toMatchObject({
      generationConfig: { maxOutputTokens: 100, temperature: 0, topP: 0.9, stopSequences: ["END"], seed: 7 },
    });
    expect(body({ max_tokens: 50, stop: ["a", "b"] }).generationConfig).toEqual({
      maxOutputTokens: 50,
      stopSequences: ["a", "b"],
    });
    expect(body({ max_tokens: null, temperature: null, stop: [] })).not.toHaveProperty("generationConfig");
  });
});

describe("google response_format", () => {
  const SCHEMA = {
    type: "object",
    properties: { name: { type: "string" }, ingredients: { type: "array", items: { type: "string" } } },
    required: ["name"],
    additionalProperties: false,
  };

  test("json_object asks for JSON", () => {
    expect(body({ response_format: { type: "json_object" } }).generationConfig).toEqual({
      responseMimeType: "application/json",
    });
  });

  test("json_schema asks for JSON with the schema as responseJsonSchema, untouched", () => {
    const rf = { type: "json_schema" as const, json_schema: { name: "recipe", schema: SCHEMA, strict: true } };
    expect(body({ response_format: rf, temperature: 0 }).generationConfig).toEqual({
      temperature: 0,
      responseMimeType: "application/json",
      responseJsonSchema: SCHEMA,
    });
    // the format's description goes into the schema, unless the schema has its own
    const described = { ...rf, json_schema: { ...rf.json_schema, description: "A recipe" } };
    expect(body({ response_format: described }).generationConfig.responseJsonSchema).toEqual({
      ...SCHEMA,
      description: "A recipe",
    });
    const own = { ...described, json_schema: { ...described.json_schema, schema: { ...SCHEMA, description: "Mine" } } };
    expect(body({ response_format: own }).generationConfig.responseJsonSchema.description).toBe("Mine");
    // no schema: JSON only
    expect(body({ response_format: { type: "json_schema", json_schema: { name: "any" } } }).generationConfig).toEqual({
      responseMimeType: "application/json",
    });
  });

  test("text or null asks for nothing", () => {
    expect(body({ response_format: { type: "text" } })).toEqual(body({}));
    expect(body({ response_format: null })).toEqual(body({}));
  });
});

describe("google sampling parameters Gemini has too", () => {
  test("n → candidateCount, penalties, logprobs → responseLogprobs and logprobs", () => {
    const b = body({ n: 3, presence_penalty: 0.5, frequency_penalty: -0.25, logprobs: true, top_logprobs: 5 });
    expect(b.generationConfig).toEqual({
      candidateCount: 3,
      presencePenalty: 0.5,
      frequencyPenalty: -0.25,
      responseLogprobs: true,
      logprobs: 5,
    });
    expect(body({ logprobs: true }).generationConfig).toEqual({ responseLogprobs: true });
  });

  test("their defaults are not sent", () => {
    const defaults = { n: 1, presence_penalty: 0, frequency_penalty: 0, logprobs: false, top_logprobs: 0 };
    expect(body(defaults)).toEqual(body({}));
    expect(body({ n: null, presence_penalty: null, logprobs: null, top_logprobs: null })).toEqual(body({}));
  });

  test("top_logprobs without logprobs is a 400, as at OpenAI", () => {
    expect(thrown({ top_logprobs: 2 })).toMatchObject({ code: 400, data: { param: "top_logprobs" } });
    expect(thrown({ top_logprobs: 2, logprobs: false })).toMatchObject({ code: 400 });
  });

  test("logprobsResult becomes the choice's logprobs", () => {
    const out = google.response(googleFixture("generate-content-logprobs.json"), meta);
    const bytes = (t: string) => [...Buffer.from(t, "utf8")];
    expect(out.choices[0].message.content).toBe("Paris.");
    expect(out.choices[0].logprobs).toEqual({
      content: [
        {
          token: "Paris",
          logprob: -0.0009,
          bytes: bytes("Paris"),
          top_logprobs: [
            { token: "Paris", logprob: -0.0009, bytes: bytes("Paris") },
            { token: "The", logprob: -7.25, bytes: bytes("The") },
          ],
        },
        {
          token: ".",
          logprob: -0.0237,
          bytes: bytes("."),
          top_logprobs: [
            { token: ".", logprob: -0.0237, bytes: bytes(".") },
            { token: "\n", logprob: -3.76, bytes: [10] },
          ],
        },
      ],
      refusal: null,
    });
    // streamed: on the chunk that carries the text
    const chunks = translate([data(googleFixture("generate-content-logprobs.json"))]);
    expect(chunks[0].choices[0].logprobs).toEqual(out.choices[0].logprobs);
    expect(chunks[1].choices[0].logprobs).toBeNull();
  });

  test("several candidates become several choices, whole and streamed", () => {
    const out = google.response(googleFixture("generate-content-two-candidates.json"), meta);
    expect(out.choices.map((c) => [c.index, c.message.content, c.finish_reason])).toEqual([
      [0, "Blue.", "stop"],
      [1, "Azure, like a clear summer sky", "length"],
    ]);
    expect(out.usage).toEqual({ prompt_tokens: 7, completion_tokens: 10, total_tokens: 17 });
    const chunks = translate([
      data({
        candidates: [{ content: { parts: [{ text: "Bl" }] } }, { content: { parts: [{ text: "Az" }] }, index: 1 }],
      }),
      data({ candidates: [{ content: { parts: [{ text: "ue." }] }, finishReason: "STOP", index: 0 }] }),
      data({ candidates: [{ content: { parts: [{ text: "ure" }] }, index: 1 }] }),
    ]);
    const of = (i: number) => chunks.filter((c) => c.choices[0]?.index === i);
    expect(of(0).map((c) => c.choices[0].delta)).toEqual([
      { role: "assistant", content: "Bl" },
      { content: "ue." },
      {},
    ]);
    expect(of(1).map((c) => c.choices[0].delta)).toEqual([
      { role: "assistant", content: "Az" },
      { content: "ure" },
      {},
    ]);
    expect(
      of(0)
        .map((c) => c.choices[0].finish_reason)
        .filter(Boolean),
    ).toEqual(["stop"]);
    expect(
      of(1)
        .map((c) => c.choices[0].finish_reason)
        .filter(Boolean),
    ).toEqual(["stop"]);
    expect(chunks.at(-1)!.choices).toEqual([]);
  });
});

describe("google parallel_tool_calls: false", () => {
  const req = (parallel_tool_calls: boolean | null) => ({
    model: "gemini-2.5-flash",
    messages: [{ role: "user" as const, content: "Party!" }],
    parallel_tool_calls,
  });

  test("is not sent: Gemini has no such switch", () => {
    expect(body({ parallel_tool_calls: false })).toEqual(body({}));
  });

  test("keeps only the first function call of an answer", () => {
    const events = fixtureEvents("stream-function-call.sse");
    const answer = JSON.parse(events[0].data) as Json;
    const one = google.response(answer, meta, req(false)).choices[0];
    expect(one.finish_reason).toBe("tool_calls");
    expect(one.message.tool_calls!.map((c) => c.function.name)).toEqual(["power_disco_ball"]);
    const all = google.response(answer, meta, req(true)).choices[0];
    expect(all.message.tool_calls!.map((c) => c.function.name)).toEqual([
      "power_disco_ball",
      "start_music",
      "dim_lights",
    ]);
    expect(google.response(answer, meta, req(null)).choices[0].message.tool_calls).toHaveLength(3);
  });

  test("streamed: only the call with index 0, even when later events bring more", () => {
    const t = google.stream(meta, req(false));
    const call = (name: string) => ({ functionCall: { name, args: {} } });
    const chunks = [...fixtureEvents("stream-function-call.sse").flatMap((e) => t.push(e)), ...t.end()];
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls.map((c) => [c.index, c.function?.name])).toEqual([[0, "power_disco_ball"]]);
    expect(finishes(chunks)).toEqual(["tool_calls"]);
    const t2 = google.stream(meta, req(false));
    const later = [
      data({ candidates: [{ content: { parts: [{ text: "Sure. " }] } }] }),
      data({ candidates: [{ content: { parts: [call("a")] } }] }),
      data({ candidates: [{ content: { parts: [call("b")] }, finishReason: "STOP" }] }),
    ].flatMap((e) => t2.push(e));
    expect(later.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []).map((c) => c.function?.name)).toEqual(["a"]);
    expect(contentOf(later)).toBe("Sure. ");
  });
});

describe("google parameters it cannot honour", () => {
  const NOT_DEFAULT: Record<string, unknown> = {
    logit_bias: { "50256": -100 },
    audio: { voice: "alloy", format: "mp3" },
    modalities: ["text", "audio"],
    prediction: { type: "content", content: "x" },
    web_search_options: { search_context_size: "low" },
    reasoning_effort: "high",
    verbosity: "low",
    functions: [{ name: "f" }],
    function_call: { name: "f" },
  };

  test("every refused parameter has a case here", () => {
    expect(Object.keys(NOT_DEFAULT).sort()).toEqual([...UNSUPPORTED].sort());
    expect(Object.keys(REFUSED)).toEqual(UNSUPPORTED);
  });

  test.each(Object.entries(NOT_DEFAULT))("%s set is a 400 naming it", (param, value) => {
    const err = thrown({ [param]: value });
    expect(err).toMatchObject({
      code: 400,
      type: "unsupported_parameter",
      data: { param, openaiType: "invalid_request_error" },
    });
    expect(err.message).toMatch(new RegExp(`^'${param}' is not supported by Google models \\(.+\\)\\.$`));
  });

  test("defaults, nulls and labels are not refused, and not sent", () => {
    const defaults = {
      logit_bias: {},
      modalities: ["text"],
      verbosity: "medium",
      functions: [],
      function_call: "none",
      audio: null,
      prediction: null,
      reasoning_effort: null,
      // ignored: they only label the request
      user: "u-1",
      metadata: { team: "a" },
      store: false,
      service_tier: "auto",
      prompt_cache_key: "k-1",
      safety_identifier: "hash-1",
    };
    expect(body(defaults)).toEqual(body({}));
  });

  test("a tool_choice of null is no tool_choice", () => {
    const tools = [{ type: "function" as const, function: { name: "now" } }];
    expect(body({ tools, tool_choice: null })).not.toHaveProperty("toolConfig");
  });
});

describe("cloudParamSupport", () => {
  test("covers every OpenAI chat parameter for each provider", () => {
    for (const provider of ["openai", "google", "anthropic"] as const) {
      expect(Object.keys(cloudParamSupport(provider)).sort()).toEqual([...OPENAI_CHAT_PARAMS].sort());
    }
    expect(new Set(Object.values(cloudParamSupport("openai")))).toEqual(new Set(["translated"]));
  });

  test("refused is exactly each provider's REFUSED table", () => {
    const refused = (p: "google" | "anthropic") =>
      Object.entries(cloudParamSupport(p))
        .filter(([, s]) => s === "refused")
        .map(([k]) => k)
        .sort();
    expect(refused("google")).toEqual([...UNSUPPORTED].sort());
    expect(refused("anthropic")).toEqual([...ANTHROPIC_UNSUPPORTED].sort());
    expect(refusalReason("anthropic", "seed")).toMatch(/seed/);
    expect(refusalReason("google", "seed")).toBeUndefined();
  });

  test("the table, as docs show it", () => {
    const g = cloudParamSupport("google");
    const a = cloudParamSupport("anthropic");
    expect([g.response_format, g.n, g.logprobs, g.seed, g.parallel_tool_calls, g.user]).toEqual([
      "translated",
      "translated",
      "translated",
      "translated",
      "translated",
      "ignored",
    ]);
    expect([a.response_format, a.n, a.logprobs, a.seed, a.parallel_tool_calls, a.user, a.metadata]).toEqual([
      "translated",
      "refused",
      "refused",
      "refused",
      "translated",
      "translated",
      "ignored",
    ]);
  });
});

describe("openai passes the body through", () => {
  test("response_format, parallel_tool_calls and every other parameter go as sent", () => {
    const req = {
      model: "gpt-4o",
      messages: [{ role: "user" as const, content: "hi" }],
      response_format: {
        type: "json_schema" as const,
        json_schema: { name: "x", schema: { type: "object" }, strict: true },
      },
      parallel_tool_calls: false,
      logprobs: true,
      top_logprobs: 2,
      n: 2,
      seed: 1,
      logit_bias: { "1": 5 },
      reasoning_effort: "low",
      verbosity: "low",
      modalities: ["text"],
      store: true,
    };
    expect(openai.request(req, { apiKey: "k", baseUrl: "https://api.openai.com" }).body).toEqual(req);
    const streamed = openai.request({ ...req, stream: true }, { apiKey: "k", baseUrl: "https://api.openai.com" }).body;
    expect(streamed).toEqual({ ...req, stream: true, stream_options: { include_usage: true } });
  });
});
