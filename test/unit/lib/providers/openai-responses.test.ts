import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openaiResponses } from "../../../../lib/providers/openai-responses";
import type { OpenAIChatRequest } from "../../../../lib/providers/types";
import { ProviderError } from "../../../../lib/providers/types";
import { data, type Json, sseEvents } from "./helpers";

// OpenAI's Responses API passed through (`openai:` models): the request as the client sent it,
// and the response or its events as they came, with the model the client named.

const cfg = { apiKey: "sk-secret", baseUrl: "https://api.openai.com" };
const meta = { id: "", model: "openai:gpt-4.1", created: 1_700_000_000 };
const fixture = (name: string) => readFileSync(join(__dirname, "../../../fixtures/openai", name), "utf8");

/** A Responses body, typed as the chat request callProvider takes. */
const asRequest = (body: object) => body as unknown as OpenAIChatRequest;

describe("openai responses: request", () => {
  test("posts the body as given to <baseUrl>/v1/responses with a bearer key", () => {
    const body = {
      model: "gpt-4.1",
      input: [{ type: "message", role: "user", content: "Hi" }],
      tools: [{ type: "web_search" }],
      previous_response_id: "resp_1",
      stream: true,
    };
    const up = openaiResponses.request(asRequest(body), cfg);
    expect(up.url).toBe("https://api.openai.com/v1/responses");
    expect(up.headers).toEqual({ authorization: "Bearer sk-secret", "content-type": "application/json" });
    // nothing added: no stream_options (the Responses API has no include_usage), no chat fields
    expect(up.body).toEqual(body);
  });

  test.each([
    ["https://api.openai.com/", "https://api.openai.com/v1/responses"],
    ["https://api.openai.com///", "https://api.openai.com/v1/responses"],
    ["http://proxy.test:8080/openai/", "http://proxy.test:8080/openai/v1/responses"],
  ])("base URL %s → %s", (baseUrl, url) => {
    expect(openaiResponses.request(asRequest({ model: "m", input: "x" }), { ...cfg, baseUrl }).url).toBe(url);
  });

  test("errors are read as OpenAI's", () => {
    expect(openaiResponses.errorMessage(400, { error: { message: "Bad input." } })).toBe("Bad input.");
  });
});

describe("openai responses: answers", () => {
  test("a response gets the model the client named; the rest is as OpenAI sent it", () => {
    const body = JSON.parse(fixture("response.json")) as Json;
    const out = openaiResponses.response(body, meta) as Json;
    expect(out).toEqual({ ...body, model: "openai:gpt-4.1" });
  });

  test("a stream's events come back one for one, the model stamped into each one's response", () => {
    const events = sseEvents(fixture("response-stream.txt"));
    expect(events.length).toBeGreaterThan(3);
    const t = openaiResponses.stream(meta);
    const out = events.flatMap((e) => t.push(e)) as Json[];
    expect(t.end()).toEqual([]);
    expect(out).toHaveLength(events.length);
    events.forEach((e, i) => {
      const sent = JSON.parse(e.data) as Json;
      if (sent.response) {
        expect(out[i]).toEqual({ ...sent, response: { ...sent.response, model: "openai:gpt-4.1" } });
      } else {
        expect(out[i]).toEqual(sent);
      }
    });
    expect(out.filter((o) => o.response).map((o) => o.type)).toEqual(
      expect.arrayContaining(["response.created", "response.completed"]),
    );
  });

  test("an event's data is parsed; one carrying a response gets the model", () => {
    const t = openaiResponses.stream(meta);
    const ev = { type: "response.completed", sequence_number: 5, response: { id: "r", model: "gpt-4.1-2025" } };
    expect(t.push({ event: "response.completed", ...data(ev) })).toEqual([
      { ...ev, response: { id: "r", model: "openai:gpt-4.1" } },
    ]);
    const delta = { type: "response.output_text.delta", delta: "Hi", sequence_number: 3 };
    expect(t.push(data(delta))).toEqual([delta]);
  });

  test("an event that is not JSON is a 502 ProviderError", () => {
    const t = openaiResponses.stream(meta);
    for (const bad of ["not json", '{"type":', ""]) {
      let err: unknown;
      try {
        t.push({ data: bad });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ status: 502, provider: "openai" });
    }
  });
});
