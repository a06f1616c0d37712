/** A token's chunk on a lane as its text alone (lib/cluster/lane-tokens.ts): what the router writes is what the node made. */
import { TokenPacker, TokenUnpacker } from "../../../../lib/cluster/lane-tokens";
import { keptText, toJson } from "../../../../lib/http/raw-json";
import { chatChunk, chatUsageChunk, textChunk } from "../../../../lib/openai/format";

const meta = { id: "chatcmpl-1", model: 'tiny "q" model', created: 1_765_000_000 };
const tricky = ['he said "hi"', "line\nbreak\ttab", "é ✓ 😀", "\u2028\u2029", "\\", "", "</script>", "\u0000\u001f"];

/** The values as JSON sees them (the kept text is under a symbol). */
const plain = (values: unknown[]) => JSON.parse(JSON.stringify(values)) as unknown[];

/** Packs a stream's chunks as a node does, then unpacks them as the router does. */
function roundTrip(chunks: unknown[]): { sent: unknown[]; got: unknown[] } {
  const packer = new TokenPacker();
  const unpacker = new TokenUnpacker();
  // through JSON, as the transporter carries them
  const sent = JSON.parse(JSON.stringify(chunks.map((c) => packer.pack(c)))) as unknown[];
  return { sent, got: sent.map((item) => unpacker.unpack(item)) };
}

test("a chat stream: its tokens go as text, and come back as the same chunks with the same JSON", () => {
  const chunks = [
    chatChunk(meta, { role: "assistant", content: "" }),
    ...tricky.map((t) => chatChunk(meta, { content: t })),
    chatChunk(meta, {
      tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }],
    }),
    chatChunk(meta, { content: "more" }),
    chatChunk(meta, {}, "stop"),
    chatUsageChunk(meta, [{ text: "", finishReason: "stop", promptTokens: 3, completionTokens: 9 }] as never),
  ];
  const { sent, got } = roundTrip(chunks);
  // the opening, the tool call, the end and the usage go whole; every plain token as its text
  expect(sent.map((s) => typeof s)).toEqual([
    "object",
    ...tricky.map(() => "string"),
    "object",
    "string",
    "object",
    "object",
  ]);
  expect(plain(got)).toEqual(chunks);
  for (let i = 0; i < chunks.length; i++) expect(toJson(got[i])).toBe(JSON.stringify(chunks[i]));
  // the text is kept with the chunks made again: the relay does not serialise them
  expect(keptText(got[1])).toBe(JSON.stringify(chunks[1]));
});

test("a text completion stream: the same", () => {
  const chunks = [textChunk(meta, "first"), ...tricky.map((t) => textChunk(meta, t)), textChunk(meta, "", "length")];
  const { sent, got } = roundTrip(chunks);
  expect(sent.filter((s) => typeof s === "string")).toEqual(tricky);
  expect(plain(got)).toEqual(chunks);
  for (let i = 0; i < chunks.length; i++) expect(toJson(got[i])).toBe(JSON.stringify(chunks[i]));
});

test("a chunk that is anything more than a token of its stream goes whole", () => {
  const token = (over: Record<string, unknown> = {}, choice: Record<string, unknown> = {}) => ({
    ...chatChunk(meta, { content: "x" }),
    ...over,
    choices: [{ ...chatChunk(meta, { content: "x" }).choices[0], ...choice }],
  });
  const others = [
    token({ id: "chatcmpl-2" }),
    token({ model: "other" }),
    token({ created: 1 }),
    token({ system_fingerprint: "fp" }),
    token({ usage: null }),
    token({}, { index: 1 }),
    token({}, { logprobs: { content: [] } }),
    token({}, { finish_reason: "stop" }),
    token({}, { delta: { content: "x", role: "assistant" } }),
    token({}, { delta: { content: null } }),
    token({}, { extra: 1 }),
    // the same fields in another order: the text made again would not be the node's
    {
      model: meta.model,
      id: meta.id,
      object: "chat.completion.chunk",
      created: meta.created,
      choices: token().choices,
    },
    { ...token(), choices: [token().choices[0], { ...token().choices[0], index: 1 }] },
  ];
  const { sent, got } = roundTrip([chatChunk(meta, { role: "assistant", content: "" }), ...others]);
  expect(sent.slice(1).every((s) => typeof s === "object")).toBe(true);
  expect(plain(got.slice(1))).toEqual(others);
  for (let i = 0; i < others.length; i++) expect(toJson(got[i + 1])).toBe(JSON.stringify(others[i]));
});

test("a stream whose first chunk is not a chunk of a known kind sends everything whole", () => {
  const packer = new TokenPacker();
  expect(packer.pack({ object: "something.else", id: "a" })).toEqual({ object: "something.else", id: "a" });
  expect(typeof packer.pack(chatChunk(meta, { content: "x" }))).toBe("object");
});

test("a token before any chunk of its stream is refused by the router", () => {
  expect(() => new TokenUnpacker().unpack("x")).toThrow(/before its stream's first chunk/);
});
