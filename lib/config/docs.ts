/**
 * docs/configuration.md, generated from the spec: `npm run docs:config`
 * (`llm-router env --markdown`). The output is already in Prettier's form
 * (aligned tables), so `prettier --check` leaves it as it is.
 */
import { shownDefault } from "./readers";
import { GROUPS, type EnvVar } from "./spec";

export const CONFIG_DOC_PATH = "docs/configuration.md";
export const CONFIG_DOC_COMMAND = "npm run docs:config";

const cell = (text: string) => text.replace(/\|/g, "\\|");

/** A Markdown table with its columns padded to equal width, as Prettier writes it. */
function table(header: string[], rows: string[][]): string[] {
  const width = (s: string) => [...s].length;
  const widths = header.map((h, i) => Math.max(3, width(h), ...rows.map((r) => width(r[i]))));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c + " ".repeat(widths[i] - width(c))).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

function row(v: EnvVar): string[] {
  const name = `\`${v.name}\`${v.secret ? " (secret)" : ""}`;
  const aliases = v.aliases.length ? ` Also read as ${v.aliases.map((a) => `\`${a}\``).join(", ")}.` : "";
  return [name, shownDefault(v), v.parse.accepts, v.doc + aliases].map(cell);
}

/** The whole of docs/configuration.md. */
export function configMarkdown(): string {
  const out = [
    `<!-- Generated from lib/config/spec.ts by \`${CONFIG_DOC_COMMAND}\`: edit the spec, not this file. -->`,
    "",
    "# Configuration",
    "",
    "Every setting is an environment variable, read when a process starts (a service reads its own when it is " +
      "created). Unset or empty means the default. A value a variable does not take stops the process at start " +
      "with a message naming the variable. Secret values (keys, passwords, tokens, URLs with credentials) are never " +
      "printed: `llm-router env --values` shows what this process would use, a secret only as set or not.",
    "",
    "Sections: " + GROUPS.map((g) => `[${g.title}](#${anchor(g.title)})`).join(", ") + ".",
  ];
  for (const g of GROUPS) {
    out.push("", `## ${g.title}`, "", g.about, "");
    out.push(...table(["Variable", "Default", "Takes", "Description"], g.vars.map(row)));
  }
  return out.join("\n") + "\n";
}

/** GitHub's anchor of a heading. */
function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replace(/ /g, "-");
}
