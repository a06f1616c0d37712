/**
 * No import cycles in lib/, services/ or mixins/, type-only imports
 * included: a module's dependencies can be read top to bottom (a cycle
 * through a type is still two files that must be read together).
 */
import fs from "node:fs";
import path from "node:path";

const ROOT = path.resolve(__dirname, "../..");
const DIRS = ["lib", "services", "mixins"];

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(".ts")) out.push(p);
    }
  };
  for (const d of DIRS) walk(path.join(ROOT, d));
  return out;
}

/** The project files a module imports or re-exports from (relative specifiers only). */
function localImports(file: string, src: string): string[] {
  const deps: string[] = [];
  for (const m of src.matchAll(/^\s*(?:import|export)\s[^;]*?\bfrom\s+"(\.[^"]+)"/gms)) {
    const target = path.resolve(path.dirname(file), m[1]);
    const found = [`${target}.ts`, path.join(target, "index.ts")].find((c) => fs.existsSync(c));
    if (found) deps.push(found);
  }
  return deps;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (n: string) => {
    state.set(n, "open");
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === "open") found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe("imports", () => {
  test("the cycle finder finds a cycle through a type-only import", () => {
    const a = "/x/a.ts";
    const b = "/x/b.ts";
    expect(
      cycles(
        new Map([
          [a, [b]],
          [b, [a]],
        ]),
      ),
    ).toEqual([[a, b, a]]);
    expect(
      cycles(
        new Map([
          [a, [b]],
          [b, []],
        ]),
      ),
    ).toEqual([]);
    expect(
      localImports(path.join(ROOT, "lib/core/router-core.ts"), 'import type { X } from "../cluster/node-table";'),
    ).toEqual([path.join(ROOT, "lib/cluster/node-table.ts")]);
  });

  test("lib/, services/ and mixins/ have no import cycle", () => {
    const graph = new Map(sources().map((f) => [f, localImports(f, fs.readFileSync(f, "utf8"))]));
    expect(cycles(graph).map((c) => c.map((f) => path.relative(ROOT, f)).join(" → "))).toEqual([]);
  });
});
