import { InstantEngine } from "../../../../lib/inference/instant-engine";
import { tempDir, writeModel } from "../../../helpers/procs";
import type { ChatJob } from "../../../../lib/inference/types";

const job = (maxTokens: number): ChatJob => ({
  requestId: "r",
  model: "sim",
  messages: [{ role: "user", content: "hi" }],
  maxTokens,
  stop: [],
  stream: false,
  includeUsage: false,
  created: 0,
});

describe("InstantEngine", () => {
  const dir = tempDir("instant");
  writeModel(dir, "sim");

  test("answers one x per token at once, without reading the file", async () => {
    const e = new InstantEngine(2);
    await e.loadModel("sim", `${dir}/sim.gguf`);
    expect(e.models().map((m) => m.id)).toEqual(["sim"]);
    const pieces: string[] = [];
    const r = await e.chat(job(5), { signal: new AbortController().signal, onText: (t) => pieces.push(t) });
    expect(r).toEqual({ text: "xxxxx", finishReason: "length", promptTokens: 8, completionTokens: 5 });
    expect(pieces).toHaveLength(5);
    await expect(e.chat({ ...job(1), model: "nope" }, { signal: new AbortController().signal })).rejects.toThrow(
      /not loaded/,
    );
  });

  test("with a per-token delay, requests past its slots wait their turn", async () => {
    const e = new InstantEngine(1, 5);
    await e.loadModel("sim", `${dir}/sim.gguf`);
    const signal = new AbortController().signal;
    const first = e.chat(job(4), { signal });
    const second = e.chat(job(4), { signal });
    await new Promise((r) => setImmediate(r));
    expect(e.load()[0]).toMatchObject({ active: 1, queued: 1, capacity: 1 });
    await Promise.all([first, second]);
    expect(e.load()[0]).toMatchObject({ active: 0, queued: 0 });
  });
});
