/** The model files of a models dir (every node engine and the model manager read it the same way). */
import fs from "node:fs";
import path from "node:path";

/** Every `.gguf` under `dir`, as [id, absolute path]; id = relative path without the extension. */
export function findModelFiles(dir: string): Array<[string, string]> {
  if (!fs.existsSync(dir)) return [];
  const out: Array<[string, string]> = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.toLowerCase().endsWith(".gguf")) {
        const id = path
          .relative(dir, full)
          .split(path.sep)
          .join("/")
          .replace(/\.gguf$/i, "");
        out.push([id, full]);
      }
    }
  };
  walk(dir);
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}
