import type { Readable } from "node:stream";
import { flattenBatches } from "../../../../lib/inference/coalesce";
import { JobRunner } from "../../../../lib/inference/runner";
import type { ChatJob, Engine, GenerationHooks, GenerationResult } from "../../../../lib/inference/types";

/** An engine that emits the given pieces, one per tick, and honours the abort signal. */
function scriptedEngine(pieces: string[]): Engine & { aborted: boolean } {
  const engine = {
    kind: "scripted",
    aborted: false,
    models: () => [],
    load: () => [],
    embed: async () => ({ vectors: [], promptTokens: 0 }),
    rank: async () => ({ scores: [], promptTokens: 0 }),
    gpuInfo: async () => ({ backend: false as const, devices: [], vram: null }),
    dispose: async () => undefined,
    inspect: async () => ({ quantization: null, estimatedBytes: 0 }),
    defaultMemoryBudget: async () => null,
    loadModel: async () => {
      throw new Error("not in this test");
    },
    unloadModel: async () => undefined,
    complete: (_job: unknown, hooks: GenerationHooks) => engine.chat(_job as ChatJob, hooks),
    async chat(_job: ChatJob, hooks: GenerationHooks): Promise<GenerationResult> {
      let text = "";
      for (const p of pieces) {
        await new Promise((r) => setImmediate(r));
        if (hooks.signal.aborted) {
          engine.aborted = true;
          return { text, finishReason: "stop", promptTokens: 3, completionTokens: text.length };
        }
        text += p;
        hooks.onText?.(p);
      }
      return { text, finishReason: "length", promptTokens: 3, completionTokens: pieces.length };
    },
  };
  return engine;
}

const job = (over: Partial<ChatJob> = {}): ChatJob => ({
  requestId: "chatcmpl-x",
  model: "m",
  messages: [{ role: "user", content: "hi" }],
  stop: [],
  stream: true,
  includeUsage: false,
  created: 1,
  ...over,
});

async function collect(stream: Readable) {
  const out = [];
  for await (const c of stream) out.push(c);
  return out;
}

describe("JobRunner", () => {
  test("a stream carries the role on the first text chunk and ends with the finish reason", async () => {
    const runner = new JobRunner(scriptedEngine(["a", "", "b"]));
    const chunks = await collect(runner.chat(job()) as Readable);
    expect(chunks.map((c) => c.choices[0].delta)).toEqual([{ role: "assistant", content: "a" }, { content: "b" }, {}]);
    expect(chunks[2].choices[0].finish_reason).toBe("length");
  });

  test("include_usage adds a last chunk with usage only", async () => {
    const runner = new JobRunner(scriptedEngine(["a"]));
    const chunks = await collect(runner.chat(job({ includeUsage: true })) as Readable);
    expect(chunks[chunks.length - 1]).toMatchObject({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 1 } });
  });

  test("a non-stream job resolves to a whole completion and records throughput", async () => {
    const runner = new JobRunner(scriptedEngine(["a", "b"]));
    const r = await runner.chat(job({ stream: false }));
    expect(r).toMatchObject({ object: "chat.completion", choices: [{ message: { content: "ab" } }] });
    expect(runner.activeRequests).toBe(0);
  });

  test("cancel aborts the generation and frees the request", async () => {
    const engine = scriptedEngine(Array.from({ length: 1000 }, () => "x"));
    const changes: number[] = [];
    const runner = new JobRunner(engine, () => changes.push(runner.activeRequests));
    const stream = runner.chat(job()) as Readable;
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    expect(runner.cancel("chatcmpl-x")).toBe(true);
    const rest = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(engine.aborted).toBe(true);
    expect(rest.length).toBeLessThan(10);
    expect(runner.cancel("chatcmpl-x")).toBe(false);
    expect(changes).toEqual([1, 0]);
  });

  test("an engine error before any text destroys the stream with that error", async () => {
    const engine = scriptedEngine([]);
    engine.chat = async () => {
      throw Object.assign(new Error("too long"), { code: 400 });
    };
    const runner = new JobRunner(engine);
    await expect(collect(runner.chat(job()) as Readable)).rejects.toThrow("too long");
  });

  test("the same request id cannot run twice at once", async () => {
    const runner = new JobRunner(scriptedEngine(["a", "b"]));
    const first = collect(runner.chat(job()) as Readable);
    expect(() => runner.chat(job())).toThrow(/already running/);
    await first;
  });

  test("with a batch window, the first chunk comes alone and the rest in batches that read back as the same chunks", async () => {
    const pieces = Array.from({ length: 40 }, (_, i) => String.fromCharCode(97 + (i % 26)));
    const plain = await collect(new JobRunner(scriptedEngine(pieces)).chat(job()) as Readable);
    const runner = new JobRunner(scriptedEngine(pieces), undefined, undefined, { windowMs: 50, maxChunks: 16 });
    const items = await collect(runner.chat(job()) as Readable);
    // the first text chunk on its own, then batches of at most 16 (the engine is faster than the window)
    expect(Array.isArray(items[0])).toBe(false);
    expect(items.slice(1).every((b) => Array.isArray(b) && b.length <= 16)).toBe(true);
    expect(items.length).toBeLessThan(plain.length / 4);
    const flat: unknown[] = [];
    const it = flattenBatches(
      (async function* () {
        yield* items;
      })(),
    );
    for (let r = await it.next(); !r.done; r = await it.next()) flat.push(r.value);
    expect(flat).toEqual(plain);
  });
});
