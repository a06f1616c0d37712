import fs from "node:fs";
import path from "node:path";
import { parameterRows, parameterTable } from "../../../../lib/providers/params";

/** The rows of a Markdown table (its cells trimmed), the separator row left out. */
function rowsOf(markdown: string): string[][] {
  return markdown
    .split("\n")
    .filter((l) => l.startsWith("|") && !/^\|[\s|:-]+\|$/.test(l))
    .map((l) =>
      l
        .slice(1, -1)
        .split("|")
        .map((c) => c.trim()),
    );
}

describe("docs/api.md's parameter table", () => {
  test("is the one the code makes (what each upstream does with each OpenAI parameter)", () => {
    const page = fs.readFileSync(path.resolve(__dirname, "../../../../docs/api.md"), "utf8");
    const m = /<!-- parameters:start -->([\s\S]*?)<!-- parameters:end -->/.exec(page);
    expect(m).not.toBeNull();
    // on a mismatch: npm run docs:params
    expect(rowsOf(m![1])).toEqual(parameterRows());
    expect(rowsOf(parameterTable())).toEqual(parameterRows());
  });
});
