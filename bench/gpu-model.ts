/** bench/gpu-measure.ts's generated model: its dimensions (MODEL_DIMS), size and writing. */
import fs from "node:fs";
import path from "node:path";
import { buildTinyLlama, tinyModelOptions } from "../lib/gguf/tiny-llama";
import { log, MIB, round } from "./gpu-common";

export interface ModelDims {
  embedding: number;
  layers: number;
  feedForward: number;
  heads: number;
  kvHeads: number;
}

export function modelDims(mode: "gpu" | "cpu"): ModelDims {
  const raw = process.env.MODEL_DIMS || (mode === "gpu" ? "2048,8,5632,16,8" : "512,4,1376,8,8");
  const [embedding, layers, feedForward, heads, kvHeads] = raw.split(",").map(Number);
  if (![embedding, layers, feedForward, heads, kvHeads].every((v) => Number.isInteger(v) && v > 0)) {
    throw new Error(`MODEL_DIMS=${raw}: want "embedding,layers,ff,heads,kvHeads"`);
  }
  return { embedding, layers, feedForward, heads, kvHeads };
}

export function parameterCount(d: ModelDims): number {
  const kvDim = (d.embedding / d.heads) * d.kvHeads;
  const perLayer = 2 * d.embedding * d.embedding + 2 * d.embedding * kvDim + 3 * d.embedding * d.feedForward;
  return d.layers * perLayer + 2 * 262 * d.embedding;
}

/**
 * Writes the model as `npm run make-model` does (lib/gguf: seeded random f16
 * weights, printable output, never EOS), with `dims`; `FILE.json` keeps what
 * a later `run --model FILE` reports. Takes about 100 ns per parameter.
 */
export function writeModel(file: string, dims: ModelDims, context: number): Record<string, unknown> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const t = performance.now();
  const id = path.basename(file, ".gguf");
  const bytes = buildTinyLlama(
    tinyModelOptions("tiny", { ...dims, f16: true, contextLength: context, name: id, seed: 7 }),
  );
  fs.writeFileSync(file, bytes);
  const meta = {
    file,
    dims,
    contextLength: context,
    bytes: bytes.length,
    mib: round(bytes.length / MIB, 0),
    parameters: parameterCount(dims),
    seconds: round((performance.now() - t) / 1000, 1),
  };
  fs.writeFileSync(`${file}.json`, JSON.stringify(meta) + "\n");
  log(`  ${file}: ${meta.mib} MiB, ${(meta.parameters / 1e6).toFixed(0)} M parameters, written in ${meta.seconds} s`);
  return meta;
}
