import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { buildTinyLlama, tinyModelOptions } from "../../../../lib/gguf/tiny-llama";
import { GgmlType, toFloat16Bits, writeGguf } from "../../../../lib/gguf/writer";
import { ROOT, tempDir } from "../../../helpers/procs";

describe("GGUF writer", () => {
  test("writes the v3 header, metadata and 32-byte aligned tensor data", () => {
    const buf = writeGguf({ "general.name": { type: "string", value: "x" } }, [
      { name: "a", dims: [3], type: GgmlType.F32, data: new Float32Array([1, 2, 3]) },
      { name: "b", dims: [2], type: GgmlType.F32, data: new Float32Array([4, 5]) },
    ]);
    expect(buf.subarray(0, 4).toString("ascii")).toBe("GGUF");
    expect(buf.readUInt32LE(4)).toBe(3);
    expect(Number(buf.readBigUInt64LE(8))).toBe(2);
    expect(Number(buf.readBigUInt64LE(16))).toBe(1);
    // data section: tensor a at its start, b at the next 32-byte boundary
    const dataStart = buf.length - 64;
    expect(dataStart % 32).toBe(0);
    expect(buf.readFloatLE(dataStart + 8)).toBe(3);
    expect(buf.readFloatLE(dataStart + 32)).toBe(4);
  });

  test("refuses a tensor whose data does not match its dims", () => {
    expect(() => writeGguf({}, [{ name: "bad", dims: [2, 2], type: GgmlType.F32, data: new Float32Array(3) }])).toThrow(
      /bad: dims give 4 elements, data has 3/,
    );
  });

  test("converts to IEEE half precision", () => {
    expect(toFloat16Bits(0)).toBe(0);
    expect(toFloat16Bits(1)).toBe(0x3c00);
    expect(toFloat16Bits(-2)).toBe(0xc000);
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(1e6)).toBe(0x7c00);
    expect(toFloat16Bits(Number.NaN) & 0x7c00).toBe(0x7c00);
  });

  test("the same seed gives the same file, another seed another", () => {
    const a = buildTinyLlama(tinyModelOptions("tiny", { seed: 1 }));
    const b = buildTinyLlama(tinyModelOptions("tiny", { seed: 1 }));
    const c = buildTinyLlama(tinyModelOptions("tiny", { seed: 2 }));
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
  });
});

describe("tiny model loads and runs in the real node-llama-cpp", () => {
  const dir = tempDir("gguf");
  const run = (file: string) =>
    JSON.parse(
      execFileSync(process.execPath, ["--import", "tsx", path.join(ROOT, "test/helpers/load-model.ts"), file], {
        cwd: ROOT,
        encoding: "utf8",
      }),
    );

  test.each([
    ["F32", { f16: false }],
    ["F16", { f16: true }],
  ])("%s weights: ChatML template, printable output, byte-fallback tokenizer, embeddings", (_name, opts) => {
    const file = path.join(dir, `model-${_name}.gguf`);
    fs.writeFileSync(file, buildTinyLlama(tinyModelOptions("tiny", { name: "unit", contextLength: 512, ...opts })));
    const info = run(file);
    expect(info).toMatchObject({
      name: "unit",
      architecture: "llama",
      trainContextSize: 512,
      chatWrapper: "ChatML",
      roundTrip: "héllo ✓",
      embeddingLength: 64,
    });
    expect(info.text).toMatch(/^[\x20-\x7e]{24}$/);
  });
});
