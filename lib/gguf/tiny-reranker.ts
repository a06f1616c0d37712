/**
 * Builds a tiny reranker: the tiny llama model (same layers, same 262-token
 * byte-fallback vocabulary) as llama.cpp's "qwen3" architecture, whose loader
 * takes an optional `cls.output.weight` ranking head (Qwen3-Reranker). With a
 * ranking context llama.cpp pools the last token, applies the head and a
 * softmax over the labels; node-llama-cpp reports label 0 as the score.
 * Scores are noise in (0, 1), but deterministic. See docs/tiny-gguf.md.
 */
import { TinyModelOptions, tinyLlamaParts, tinyModelOptions } from "./tiny-llama";
import { GgmlType, GgufValue, writeGguf } from "./writer";

/**
 * Two labels, as the real Qwen3-Reranker conversion writes: with one label the
 * softmax would make every score 1.
 */
export const TINY_RERANKER_LABELS = ["yes", "no"];

/** The tiny preset, named for the reranker, without the printable tweaks (nothing is generated). */
export function tinyRerankerOptions(overrides: Partial<TinyModelOptions> = {}): TinyModelOptions {
  return tinyModelOptions("tiny", { name: "tiny-reranker", printable: false, ...overrides });
}

/** Builds the GGUF bytes of a tiny qwen3 model with a ranking head. */
export function buildTinyReranker(opts: TinyModelOptions): Buffer {
  const parts = tinyLlamaParts(opts);
  const headDim = opts.embedding / opts.heads;

  const metadata: Record<string, GgufValue> = {};
  for (const [key, value] of Object.entries(parts.metadata)) {
    metadata[key.startsWith("llama.") ? `qwen3.${key.slice("llama.".length)}` : key] = value;
  }
  metadata["general.architecture"] = { type: "string", value: "qwen3" };
  metadata["qwen3.classifier.output_labels"] = { type: "string[]", value: TINY_RERANKER_LABELS };

  const tensors = [...parts.tensors];
  const ones = (name: string) => ({
    name,
    dims: [headDim],
    type: GgmlType.F32,
    data: new Float32Array(headDim).fill(1),
  });
  for (let b = 0; b < opts.layers; b++) {
    tensors.push(ones(`blk.${b}.attn_q_norm.weight`), ones(`blk.${b}.attn_k_norm.weight`));
  }
  tensors.push(parts.random("cls.output.weight", [opts.embedding, TINY_RERANKER_LABELS.length]));
  return writeGguf(metadata, tensors);
}
