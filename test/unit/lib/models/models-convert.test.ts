/**
 * The pieces of conversion that need no process: which repository files the
 * converter gets, the id of a converted model, the failure reason taken from
 * the script's output, and reading a router-held file slice by slice into the
 * nodes' download path (resume at an offset, client errors final).
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { readSlice, sliceSource } from "../../../../lib/models/cluster-source";
import { conversionFiles, conversionId, lastLines } from "../../../../lib/models/convert";
import { downloadFile } from "../../../../lib/models/download";
import type { HubFile } from "../../../../lib/models/hub";
import { apiError } from "../../../../lib/openai/errors";
import { ggufBytes } from "../../../helpers/standins/hub";

const f = (p: string, size = 10): HubFile => ({ path: p, size, sha256: null });
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("conversionFiles", () => {
  test("config, tokenizer and safetensors at the top; not the README, subfolders or PyTorch twins", () => {
    const got = conversionFiles([
      f("README.md"),
      f("config.json"),
      f("tokenizer.json"),
      f("tokenizer.model"),
      f("merges.txt"),
      f("model-00001-of-00002.safetensors"),
      f("model-00002-of-00002.safetensors"),
      f("model.safetensors.index.json"),
      f("pytorch_model.bin"),
      f("original/consolidated.00.pth"),
      f("original/params.json"),
    ]).map((x) => x.path);
    expect(got.sort()).toEqual(
      [
        "config.json",
        "merges.txt",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer.model",
      ].sort(),
    );
  });

  test("PyTorch weights when there is no safetensors, without training leftovers; nothing without weights", () => {
    const got = conversionFiles([f("config.json"), f("pytorch_model.bin"), f("training_args.bin"), f("optimizer.pt")]);
    expect(got.map((x) => x.path)).toEqual(["config.json", "pytorch_model.bin"]);
    expect(conversionFiles([f("config.json"), f("README.md")])).toEqual([]);
  });
});

test("conversionId names the repo and the type, and refuses bad repos", () => {
  expect(conversionId("org/Some-Model", "q8_0")).toBe("hf/org/Some-Model/Some-Model-q8_0");
  expect(() => conversionId("../etc", "q8_0")).toThrow();
});

test("lastLines keeps the end of the output, blank lines dropped", () => {
  const out = "Loading\n\nTraceback (most recent call last):\n  File x\r\nValueError: nope\n\n";
  expect(lastLines(out, 2)).toBe("File x | ValueError: nope");
  expect(lastLines("", 3)).toBe("");
});

describe("a file read from the router in slices", () => {
  const model = ggufBytes("slices", 7);
  let dir: string;
  let src: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "llm-router-slices-"));
    src = path.join(dir, "source.gguf");
    fs.writeFileSync(src, model);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const options = (read: Parameters<typeof sliceSource>[0], relPath: string) => ({
    source: sliceSource(read, model.length, 150_000),
    destDir: path.join(dir, "models"),
    relPath,
    sha256: sha256(model),
    size: model.length,
    signal: new AbortController().signal,
    backoffMs: 1,
  });

  test("arrives whole, each slice asked where the last ended, and a broken slice resumes at its offset", async () => {
    const asked: number[] = [];
    let broke = false;
    const read = async (offset: number, length: number) => {
      asked.push(offset);
      const slice = readSlice(src, offset, length);
      if (broke || offset < 300_000) return slice;
      broke = true;
      // part of the slice, then the transfer breaks
      const part = Buffer.concat(
        await readSlice(src, offset, 1000)
          .toArray()
          .then((a) => a.map((c: string) => Buffer.from(c, "base64"))),
      );
      slice.destroy();
      return Readable.from(
        (async function* () {
          yield part.toString("base64");
          throw new Error("the transporter went away");
        })(),
      );
    };
    const got = await downloadFile(options(read, "hf/org/x/x-q8_0.gguf"));
    expect(got.sha256).toBe(sha256(model));
    expect(fs.readFileSync(got.path).equals(model)).toBe(true);
    expect(asked).toEqual([0, 150_000, 300_000, 301_000, 451_000]);
  });

  test("a client error from the router ends the download at once, nothing left behind", async () => {
    let calls = 0;
    const read = async () => {
      calls++;
      throw apiError(404, "The converted file of x is missing.", "file_missing");
    };
    await expect(downloadFile(options(read, "hf/org/y/y-q8_0.gguf"))).rejects.toMatchObject({ code: 404 });
    expect(calls).toBe(1);
    expect(fs.readdirSync(path.join(dir, "models/hf/org/y"))).toEqual([]);
  });
});
