/**
 * What a runtime is sent: the client's body as it came (its own text) when
 * the router needs to change nothing in it, a changed copy otherwise.
 */
import { keepText, toJson } from "../../../../lib/http/raw-json";
import { chatJob, completionJob } from "../../../../lib/openai/jobs";
import {
  chatSchema,
  completionSchema,
  parseRequest,
  type ChatBody,
  type CompletionBody,
} from "../../../../lib/openai/schemas";
import { runtimeBody } from "../../../../lib/upstreams/runtime";

/** A body as the parser gives it: parsed from `text`, keeping it. */
function received(text: string): unknown {
  const body = JSON.parse(text) as unknown;
  keepText(body, text);
  return body;
}

const chat = chatSchema(100_000);
const completion = completionSchema(100_000);

describe("parseRequest", () => {
  // every kind of field the schemas look into, and some they do not know
  const bodies = [
    '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":64}',
    '{"messages":[{"role":"system","content":"be brief","name":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:x"}}]}],"model":"m","temperature":1.50,"top_p":1e-1,"stream":null,"stop":["x"],"n":1,"seed":7}',
    '{"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"},"strict":true}}],"tool_choice":"auto","response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{}}},"stream":true,"stream_options":{"include_usage":false},"logit_bias":{"12":-1},"user":"u","prompt_cache_key":"k","vendor_extra":{"a":[1,2]}}',
  ];
  test.each(bodies)("a chat body keeps its text, and the text says what the schema answered: %s", (text) => {
    const parsed = parseRequest(chat, received(text));
    expect(toJson(parsed)).toBe(text);
    // (the copy through JSON.stringify: the kept text is not part of the value)
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(parsed)));
  });

  test("a completion body too", () => {
    const text = '{"model":"m","prompt":["once"],"max_tokens":null,"echo":false}';
    const parsed = parseRequest(completion, received(text));
    expect(toJson(parsed)).toBe(text);
    // (the copy through JSON.stringify: the kept text is not part of the value)
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(parsed)));
  });
});

describe("runtimeBody", () => {
  /** The body parsed as the api does, and what the runtime is sent of it (its JSON text). */
  const sent = (text: string) => {
    const isChat = text.includes('"messages"');
    const body = (isChat ? parseRequest(chat, received(text)) : parseRequest(completion, received(text))) as
      ChatBody | CompletionBody;
    const job = isChat ? chatJob(body as ChatBody) : completionJob(body as CompletionBody);
    job.includeUsage = true;
    const out = runtimeBody(body, job);
    return { body, out, json: typeof out === "string" ? out : toJson(out) };
  };
  const hi = '"messages":[{"role":"user","content":"hi"}]';

  test.each([
    `{"model":"m",${hi},"stream":false,"max_tokens":5}`,
    `{"model":"m",${hi},"stream":true,"stream_options":{"include_usage":true}}`,
    '{"model":"m","prompt":"p","max_tokens":3,"stream":false}',
  ])("nothing to change: the body itself, sent as it came: %s", (text) => {
    const { body, out, json } = sent(text);
    expect(out).toBe(body);
    expect(json).toBe(text);
  });

  test.each([` {"model":"m",${hi}}`, `{ "model": "m", ${hi}, "max_tokens": 5 }`])(
    "no stream field: the text as it came, with stream false put first: %s",
    (text) => {
      const { json } = sent(text);
      const i = text.indexOf("{") + 1;
      expect(json).toBe(`${text.slice(0, i)}"stream":false,${text.slice(i)}`);
      expect(JSON.parse(json)).toEqual({ ...JSON.parse(text), stream: false });
    },
  );

  test.each([
    // a stream without usage asked: usage is asked (history counts tokens)
    [`{"model":"m",${hi},"stream":true}`, { stream: true, stream_options: { include_usage: true } }],
    [
      `{"model":"m",${hi},"stream":true,"stream_options":{"include_usage":false,"x":1}}`,
      { stream_options: { include_usage: true, x: 1 } },
    ],
    // usage options without a stream are dropped (runtimes refuse them)
    [`{"model":"m",${hi},"stream_options":{"include_usage":true}}`, { stream: false }],
    [`{"model":"m",${hi},"stream":null}`, { stream: false }],
    // a completion without a length gets OpenAI's 16
    ['{"model":"m","prompt":"p"}', { stream: false, max_tokens: 16 }],
  ])("a change makes a copy, serialised afresh: %s", (text, expected) => {
    const { body, out, json } = sent(text);
    expect(out).not.toBe(body);
    expect(typeof out).toBe("object");
    expect(out).toMatchObject(expected);
    if (!(expected as { stream_options?: unknown }).stream_options) expect(out).not.toHaveProperty("stream_options");
    expect(json).toBe(JSON.stringify(out));
  });

  test("a body that did not keep its text (sent in another charset) is serialised, stream said", () => {
    const body = parseRequest(chat, JSON.parse(`{"model":"m",${hi}}`));
    const job = chatJob(body);
    const out = runtimeBody(body, job);
    expect(typeof out).toBe("object");
    expect(out).toMatchObject({ model: "m", stream: false });
  });
});
