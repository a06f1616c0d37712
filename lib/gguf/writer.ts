/**
 * A minimal GGUF v3 writer: metadata key/values and F32/F16 tensors.
 * Layout: magic, version, tensor count, kv count, kvs, tensor infos,
 * padding to the alignment, then tensor data (each tensor padded).
 */

export const GGUF_ALIGNMENT = 32;

enum ValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export enum GgmlType {
  F32 = 0,
  F16 = 1,
}

/** A typed metadata value. Plain JS values are ambiguous (which int width?), so callers say. */
export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: string[] }
  | { type: "f32[]"; value: ArrayLike<number> }
  | { type: "i32[]"; value: ArrayLike<number> };

export interface GgufTensor {
  name: string;
  /** Dimensions in ggml order: the fastest-varying (input) dimension first. */
  dims: number[];
  type: GgmlType;
  data: Float32Array;
}

/** Growable little-endian byte sink. */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: number): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  f32(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.length);
    this.length += 4;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  str(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.bytes(bytes);
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.ensure(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }
  toBuffer(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(out: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case "u32":
      out.u32(ValueType.UINT32);
      out.u32(v.value);
      return;
    case "i32":
      out.u32(ValueType.INT32);
      out.i32(v.value);
      return;
    case "f32":
      out.u32(ValueType.FLOAT32);
      out.f32(v.value);
      return;
    case "bool":
      out.u32(ValueType.BOOL);
      out.u8(v.value ? 1 : 0);
      return;
    case "string":
      out.u32(ValueType.STRING);
      out.str(v.value);
      return;
    case "string[]":
      out.u32(ValueType.ARRAY);
      out.u32(ValueType.STRING);
      out.u64(v.value.length);
      for (const s of v.value) out.str(s);
      return;
    case "f32[]":
      out.u32(ValueType.ARRAY);
      out.u32(ValueType.FLOAT32);
      out.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) out.f32(v.value[i]);
      return;
    case "i32[]":
      out.u32(ValueType.ARRAY);
      out.u32(ValueType.INT32);
      out.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) out.i32(v.value[i]);
      return;
  }
}

/** IEEE 754 half-precision bits of a float (round to nearest). */
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function toFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant = (mant | 0x800000) >> (1 - e);
    return sign | ((mant + 0x1000) >> 13);
  }
  const half = sign | (e << 10) | (mant >> 13);
  // round half up on the dropped bits; a carry into the exponent is correct IEEE behaviour
  return mant & 0x1000 ? half + 1 : half;
}

function tensorBytes(t: GgufTensor): Buffer {
  if (t.type === GgmlType.F32) {
    return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  const half = new Uint16Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) half[i] = toFloat16Bits(t.data[i]);
  return Buffer.from(half.buffer);
}

/** Serialises a whole GGUF file into one buffer. */
export function writeGguf(metadata: Record<string, GgufValue>, tensors: GgufTensor[]): Buffer {
  const out = new ByteSink();
  out.bytes(Buffer.from("GGUF", "ascii"));
  out.u32(3);
  out.u64(tensors.length);
  const entries = Object.entries(metadata);
  out.u64(entries.length);
  for (const [key, value] of entries) {
    out.str(key);
    writeValue(out, value);
  }

  const blobs = tensors.map(tensorBytes);
  let offset = 0;
  tensors.forEach((t, i) => {
    const expected = t.dims.reduce((a, b) => a * b, 1);
    if (expected !== t.data.length) {
      throw new Error(`tensor ${t.name}: dims give ${expected} elements, data has ${t.data.length}`);
    }
    out.str(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(t.type);
    out.u64(offset);
    offset += Math.ceil(blobs[i].length / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  });
  out.padTo(GGUF_ALIGNMENT);
  for (const blob of blobs) {
    out.bytes(blob);
    out.padTo(GGUF_ALIGNMENT);
  }
  return out.toBuffer();
}
