import { execFileSync } from "node:child_process";
import path from "node:path";
import { functionsOf, isForced } from "../../../../lib/inference/llama-tools";
import type { ChatJob } from "../../../../lib/inference/types";

const ROOT = path.resolve(__dirname, "../../../..");
const job = (extra: Partial<ChatJob>): ChatJob => ({
  requestId: "r",
  model: "m",
  stream: false,
  includeUsage: false,
  created: 0,
  stop: [],
  messages: [{ role: "user", content: "hi" }],
  ...extra,
});
const tools = [
  { name: "a", description: "A", parameters: { type: "object" } },
  { name: "b", parameters: undefined },
];

describe("which functions the model gets", () => {
  test("auto and required: all; a named function: only it; none: no functions", () => {
    expect(Object.keys(functionsOf(job({ tools, toolChoice: "auto" }))!)).toEqual(["a", "b"]);
    expect(Object.keys(functionsOf(job({ tools, toolChoice: "required" }))!)).toEqual(["a", "b"]);
    expect(Object.keys(functionsOf(job({ tools, toolChoice: { name: "b" } }))!)).toEqual(["b"]);
    expect(functionsOf(job({ tools, toolChoice: "none" }))).toBeUndefined();
    expect(functionsOf(job({}))).toBeUndefined();
    expect(functionsOf(job({ tools }))!.a).toEqual({ description: "A", params: { type: "object" } });
  });

  test("a call is forced by required or a named function", () => {
    expect(isForced(job({ tools, toolChoice: "required" }))).toBe(true);
    expect(isForced(job({ tools, toolChoice: { name: "a" } }))).toBe(true);
    expect(isForced(job({ tools, toolChoice: "auto" }))).toBe(false);
    expect(isForced(job({ tools }))).toBe(false);
  });
});

describe("node-llama-cpp's number grammar, tightened", () => {
  test("an integer has no fraction and no exponent; a number's exponent has at most two digits", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", "test/helpers/number-grammar.ts"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    const { integer, number } = JSON.parse(out) as { integer: string; number: string };
    const rule = (gbnf: string, name: string) => gbnf.split("\n").find((l) => l.startsWith(`${name} ::=`)) ?? "";
    expect(rule(integer, "integer-number-rule")).toBe('integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15})');
    expect(rule(number, "fractional-number-rule")).toBe(
      'fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?',
    );
  }, 30_000);
});
