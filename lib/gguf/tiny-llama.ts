/**
 * Builds a tiny llama-architecture model with seeded random weights and a
 * ChatML template. Output is noise, but the whole real inference path runs.
 * See docs/tiny-gguf.md for the facts this follows.
 */
import { GgmlType, GgufTensor, GgufValue, writeGguf } from "./writer";

export interface TinyModelOptions {
  embedding: number;
  layers: number;
  feedForward: number;
  heads: number;
  kvHeads: number;
  contextLength: number;
  seed: number;
  f16: boolean;
  name: string;
  /** Restrict output to printable ASCII and never sample EOS (see docs). */
  printable: boolean;
}

export const TINY_MODEL_PRESETS = {
  tiny: { embedding: 64, layers: 2, feedForward: 128, heads: 4, kvHeads: 4, f16: false },
  small: { embedding: 256, layers: 4, feedForward: 512, heads: 8, kvHeads: 4, f16: true },
  medium: { embedding: 512, layers: 8, feedForward: 1376, heads: 8, kvHeads: 8, f16: false },
} as const;

export type TinyModelPreset = keyof typeof TINY_MODEL_PRESETS;

export function tinyModelOptions(
  preset: TinyModelPreset = "tiny",
  overrides: Partial<TinyModelOptions> = {},
): TinyModelOptions {
  return {
    ...TINY_MODEL_PRESETS[preset],
    contextLength: 2048,
    seed: 42,
    name: `tiny-llama-${preset}`,
    printable: true,
    ...overrides,
  };
}

const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const BYTE_BASE = 3;
const TOKEN_SPACE = 259;
const TOKEN_IM_START = 260;
const TOKEN_IM_END = 261;
const VOCAB_SIZE = 262;

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normalSampler(seed: number): () => number {
  const rand = prng(seed);
  return () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

function vocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  tokens.push("\u2581", "<|im_start|>", "<|im_end|>");
  types.push(1, 3, 3);
  return { tokens, scores: tokens.map(() => 0), types };
}

function isPrintableToken(id: number): boolean {
  const byte = id - BYTE_BASE;
  return id >= BYTE_BASE && id < TOKEN_SPACE && byte >= 0x20 && byte <= 0x7e;
}

/** Builds the GGUF bytes of a tiny llama model. */
export function buildTinyLlama(opts: TinyModelOptions): Buffer {
  const { metadata, tensors } = tinyLlamaParts(opts);
  return writeGguf(metadata, tensors);
}

/** What buildTinyLlama writes, before writing; other tiny models (tiny-reranker.ts) build on it. */
export interface TinyLlamaParts {
  metadata: Record<string, GgufValue>;
  tensors: GgufTensor[];
  /** A random [in, out] matrix, scaled by 1/sqrt(in), drawn from the rest of the seeded stream. */
  random: (name: string, dims: number[]) => GgufTensor;
}

/** The metadata and tensors of a tiny llama model. */
export function tinyLlamaParts(opts: TinyModelOptions): TinyLlamaParts {
  const { embedding: nEmbd, layers, feedForward: nFf, heads, kvHeads } = opts;
  if (nEmbd % heads !== 0) throw new Error("embedding must be a multiple of heads");
  const headDim = nEmbd / heads;
  const kvDim = kvHeads * headDim;
  const normal = normalSampler(opts.seed);
  const type = opts.f16 ? GgmlType.F16 : GgmlType.F32;

  const random = (name: string, dims: number[]): GgufTensor => {
    const n = dims[0] * dims[1];
    const scale = 1 / Math.sqrt(dims[0]);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = normal() * scale;
    return { name, dims, type, data };
  };
  const ones = (name: string): GgufTensor => ({
    name,
    dims: [nEmbd],
    type: GgmlType.F32,
    data: new Float32Array(nEmbd).fill(1),
  });
  /** Zeroes output row 0 of a [in, out] matrix so it never changes channel 0. */
  const zeroRow0 = (t: GgufTensor): GgufTensor => {
    if (opts.printable) t.data.fill(0, 0, t.dims[0]);
    return t;
  };

  const tensors: GgufTensor[] = [];
  const embd = random("token_embd.weight", [nEmbd, VOCAB_SIZE]);
  if (opts.printable) for (let v = 0; v < VOCAB_SIZE; v++) embd.data[v * nEmbd] = 2.0;
  tensors.push(embd);

  for (let b = 0; b < layers; b++) {
    tensors.push(
      ones(`blk.${b}.attn_norm.weight`),
      random(`blk.${b}.attn_q.weight`, [nEmbd, nEmbd]),
      random(`blk.${b}.attn_k.weight`, [nEmbd, kvDim]),
      random(`blk.${b}.attn_v.weight`, [nEmbd, kvDim]),
      zeroRow0(random(`blk.${b}.attn_output.weight`, [nEmbd, nEmbd])),
      ones(`blk.${b}.ffn_norm.weight`),
      random(`blk.${b}.ffn_gate.weight`, [nEmbd, nFf]),
      random(`blk.${b}.ffn_up.weight`, [nEmbd, nFf]),
      zeroRow0(random(`blk.${b}.ffn_down.weight`, [nFf, nEmbd])),
    );
  }
  tensors.push(ones("output_norm.weight"));
  const output = random("output.weight", [nEmbd, VOCAB_SIZE]);
  if (opts.printable) {
    for (let v = 0; v < VOCAB_SIZE; v++) {
      output.data[v * nEmbd] = isPrintableToken(v) ? 0 : -40;
    }
  }
  tensors.push(output);

  const vocab = vocabulary();
  const metadata: Record<string, GgufValue> = {
    "general.architecture": { type: "string", value: "llama" },
    "general.name": { type: "string", value: opts.name },
    "general.alignment": { type: "u32", value: 32 },
    "general.file_type": { type: "u32", value: opts.f16 ? 1 : 0 },
    "llama.vocab_size": { type: "u32", value: VOCAB_SIZE },
    "llama.context_length": { type: "u32", value: opts.contextLength },
    "llama.embedding_length": { type: "u32", value: nEmbd },
    "llama.block_count": { type: "u32", value: layers },
    "llama.feed_forward_length": { type: "u32", value: nFf },
    "llama.attention.head_count": { type: "u32", value: heads },
    "llama.attention.head_count_kv": { type: "u32", value: kvHeads },
    "llama.rope.dimension_count": { type: "u32", value: headDim },
    "llama.rope.freq_base": { type: "f32", value: 10000 },
    "llama.attention.layer_norm_rms_epsilon": { type: "f32", value: 1e-5 },
    "tokenizer.ggml.model": { type: "string", value: "llama" },
    "tokenizer.ggml.tokens": { type: "string[]", value: vocab.tokens },
    "tokenizer.ggml.scores": { type: "f32[]", value: vocab.scores },
    "tokenizer.ggml.token_type": { type: "i32[]", value: vocab.types },
    "tokenizer.ggml.bos_token_id": { type: "u32", value: 1 },
    "tokenizer.ggml.eos_token_id": { type: "u32", value: 2 },
    "tokenizer.ggml.unknown_token_id": { type: "u32", value: 0 },
    "tokenizer.ggml.padding_token_id": { type: "u32", value: 0 },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
    "tokenizer.ggml.add_eos_token": { type: "bool", value: false },
    "tokenizer.ggml.add_space_prefix": { type: "bool", value: false },
    "tokenizer.chat_template": { type: "string", value: CHATML_TEMPLATE },
  };
  return { metadata, tensors, random };
}

export { TOKEN_IM_END, TOKEN_IM_START };
