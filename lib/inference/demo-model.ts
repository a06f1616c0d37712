/** The random-weight demo model written into an empty models dir on first start. */
import fs from "node:fs";
import path from "node:path";
import { buildTinyLlama, tinyModelOptions } from "../gguf/tiny-llama";
import { findModelFiles } from "./model-files";

export const DEMO_MODEL_ID = "demo-tiny-random";

/** Writes the demo model when `dir` holds no GGUF; returns its path, or null when nothing was written. */
export function ensureDemoModel(dir: string): string | null {
  if (findModelFiles(dir).length > 0) return null;
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${DEMO_MODEL_ID}.gguf`);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, buildTinyLlama(tinyModelOptions("small", { name: DEMO_MODEL_ID })));
  fs.renameSync(tmp, file);
  return file;
}
