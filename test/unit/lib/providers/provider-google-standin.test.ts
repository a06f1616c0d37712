import { google } from "../../../../lib/providers/google";
import type { OpenAIChatRequest } from "../../../../lib/providers/types";
import { waitFor } from "../../../helpers/wait";
import { GOOGLE_TEST_KEY, googleFixture, startGoogleStandIn, type StandIn } from "../../../helpers/standins/google";
import { contentOf, GOOGLE_STORY as STORY, googleSetup, sseEvents, type Json } from "./helpers";

// The provider against the Google stand-in (test/helpers/standins/google) over HTTP:
// keys, fixtures, queued answers, slow streams
const { meta, translate } = googleSetup;

describe("google stand-in", () => {
  let s: StandIn;
  beforeAll(async () => {
    s = await startGoogleStandIn();
  });
  afterAll(() => s.close());

  const post = (req: Partial<OpenAIChatRequest>, key = GOOGLE_TEST_KEY, signal?: AbortSignal) => {
    const up = google.request(
      { model: "gemini-2.5-flash", messages: [{ role: "user", content: "hi" }], ...req },
      { apiKey: key, baseUrl: s.url },
    );
    return fetch(up.url, { method: "POST", headers: up.headers, body: JSON.stringify(up.body), signal });
  };

  test("checks the key and records requests", async () => {
    const res = await post({}, "wrong");
    expect(res.status).toBe(400);
    const b = (await res.json()) as Json;
    expect(b.error.details[0].reason).toBe("API_KEY_INVALID");
    expect(b).not.toHaveProperty("_source");
    const last = s.requests.at(-1)!;
    expect(last).toMatchObject({ method: "POST", path: "/v1beta/models/gemini-2.5-flash:generateContent" });
    expect(last.headers["x-goog-api-key"]).toBe("wrong");
    expect(last.body.contents).toEqual([{ role: "user", parts: [{ text: "hi" }] }]);
  });

  test("answers the fixtures, plain and streamed", async () => {
    const plain = google.response(await (await post({})).json(), meta);
    expect(plain.choices[0].message.content).toMatch(/^AI learns/);
    const tools = [{ type: "function" as const, function: { name: "schedule_meeting" } }];
    const called = google.response(await (await post({ tools })).json(), meta);
    expect(called.choices[0].finish_reason).toBe("tool_calls");
    const res = await post({ stream: true });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const text = await res.text();
    expect(text).toContain("}\r\n\r\ndata: {");
    expect(contentOf(translate(sseEvents(text)))).toBe(STORY);
    expect(s.requests.at(-1)!.path).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
  });

  test("answers queued answers first", async () => {
    s.queue.push({
      status: 429,
      body: googleFixture("error-429-resource-exhausted.json"),
      headers: { "retry-after": "2" },
    });
    const res = await post({});
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(google.errorMessage(429, await res.json())).toMatch(/^You exceeded your current quota/);
    expect((await post({})).status).toBe(200);
  });

  test("streams SLOW answers until the client closes", async () => {
    const ac = new AbortController();
    const res = await post(
      { stream: true, messages: [{ role: "user", content: "go SLOW" }] },
      GOOGLE_TEST_KEY,
      ac.signal,
    );
    const reader = res.body!.getReader();
    let got = "";
    while (!got.includes("tick 1 ")) got += Buffer.from((await reader.read()).value!).toString("utf8");
    ac.abort();
    await reader.cancel().catch(() => undefined);
    await waitFor(() => s.closedEarly !== 0, { what: "the upstream stream closed" });
    expect(s.closedEarly).toBe(1);
  });
});
