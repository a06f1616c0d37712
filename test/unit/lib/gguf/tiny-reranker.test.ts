import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { buildTinyLlama, tinyModelOptions } from "../../../../lib/gguf/tiny-llama";
import { buildTinyReranker, tinyRerankerOptions } from "../../../../lib/gguf/tiny-reranker";
import { ROOT, tempDir } from "../../../helpers/procs";

/**
 * Ranks with the real node-llama-cpp in its own process (it is ESM-only; jest
 * runs CJS) and prints what the tests check, as JSON. A file, not \`node -e\`:
 * node-llama-cpp forks itself with process.execArgv to test its binary.
 *   node rank.mjs NODE_LLAMA_CPP_URL RERANKER_GGUF PLAIN_GGUF
 */
const RANK_SCRIPT = `
const [nodeLlamaCpp, reranker, plain] = process.argv.slice(2);
const lib = await import(nodeLlamaCpp);
const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
const query = "What is the capital of France?";
const docs = ["Paris is the capital of France.", "Bananas are yellow.", "The quick brown fox jumps."];
const model = await llama.loadModel({ modelPath: reranker });
const context = await model.createRankingContext({ contextSize: 512, threads: 1 });
const first = await context.rankAll(query, docs);
const second = await context.rankAll(query, docs);
const plainModel = await llama.loadModel({ modelPath: plain });
const plainError = await plainModel.createRankingContext({ contextSize: 512, threads: 1 }).then(
  () => null,
  (err) => err.message,
);
console.log(JSON.stringify({
  architecture: model.fileInfo.metadata.general.architecture,
  supportsRanking: model.fileInsights.supportsRanking,
  first,
  second,
  plainSupportsRanking: plainModel.fileInsights.supportsRanking,
  plainError,
}));
await llama.dispose();
`;

describe("tiny reranker", () => {
  const dir = tempDir("reranker");
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("the same seed gives the same file, another seed another", () => {
    const a = buildTinyReranker(tinyRerankerOptions({ seed: 1 }));
    expect(a.equals(buildTinyReranker(tinyRerankerOptions({ seed: 1 })))).toBe(true);
    expect(a.equals(buildTinyReranker(tinyRerankerOptions({ seed: 2 })))).toBe(false);
  });

  test("node-llama-cpp ranks with it, deterministically; a plain tiny model cannot rank", () => {
    const reranker = path.join(dir, "reranker.gguf");
    const plain = path.join(dir, "plain.gguf");
    fs.writeFileSync(reranker, buildTinyReranker(tinyRerankerOptions({ contextLength: 512 })));
    fs.writeFileSync(plain, buildTinyLlama(tinyModelOptions("tiny", { contextLength: 512 })));

    const script = path.join(dir, "rank.mjs");
    fs.writeFileSync(script, RANK_SCRIPT);
    const nodeLlamaCpp = pathToFileURL(require.resolve("node-llama-cpp")).href;
    const out = execFileSync(process.execPath, [script, nodeLlamaCpp, reranker, plain], {
      cwd: ROOT,
      encoding: "utf8",
    });
    const info = JSON.parse(out);

    expect(info.architecture).toBe("qwen3");
    expect(info.supportsRanking).toBe(true);
    expect(info.first).toHaveLength(3);
    for (const score of info.first) {
      expect(typeof score).toBe("number");
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
    }
    // two labels: the softmax gives real probabilities, not a constant 1
    expect(new Set(info.first).size).toBeGreaterThan(1);
    expect(info.second).toEqual(info.first);

    expect(info.plainSupportsRanking).toBe(false);
    expect(info.plainError).toMatch(/rankings is not supported/);
  });
});
