/**
 * What each cloud does with every OpenAI chat parameter: translates it into
 * its own API, ignores it (it only labels the request: user ids, metadata,
 * OpenAI's storage and tiers), or refuses it with a 400
 * `unsupported_parameter` when it is set to anything but its default. The
 * tables live next to each translation (REFUSED, IGNORED in google-params.ts
 * and anthropic-params.ts); this puts them together, for docs and tests.
 */
import fs from "node:fs";
import { IGNORED as ANTHROPIC_IGNORED, REFUSED as ANTHROPIC_REFUSED } from "./anthropic-params";
import { IGNORED as GOOGLE_IGNORED, REFUSED as GOOGLE_REFUSED } from "./google-params";
import { CHAT_PARAMS } from "../openai/chat-params";
import { OPENAI_CHAT_PARAMS, type OpenAIChatParam, type ParamSupport, type Refusal } from "./types";

export type CloudProviderName = "google" | "anthropic" | "openai";

const TABLES: Record<CloudProviderName, { refused: Readonly<Record<string, Refusal>>; ignored: readonly string[] }> = {
  // OpenAI gets the body as the client sent it: every parameter goes through
  openai: { refused: {}, ignored: [] },
  google: { refused: GOOGLE_REFUSED, ignored: GOOGLE_IGNORED },
  anthropic: { refused: ANTHROPIC_REFUSED, ignored: ANTHROPIC_IGNORED },
};

/** Each OpenAI chat parameter (OPENAI_CHAT_PARAMS) and what `provider` does with it. */
export function cloudParamSupport(provider: CloudProviderName): Record<OpenAIChatParam, ParamSupport> {
  const { refused, ignored } = TABLES[provider];
  const out = {} as Record<OpenAIChatParam, ParamSupport>;
  for (const p of OPENAI_CHAT_PARAMS) {
    out[p] = Object.hasOwn(refused, p) ? "refused" : ignored.includes(p) ? "ignored" : "translated";
  }
  return out;
}

/** Why `provider` refuses `param` (undefined when it does not). */
export function refusalReason(provider: CloudProviderName, param: string): string | undefined {
  const { refused } = TABLES[provider];
  return Object.hasOwn(refused, param) ? refused[param].why : undefined;
}

const CLOUDS: CloudProviderName[] = ["openai", "google", "anthropic"];

/**
 * The rows of docs/api.md's parameter table: each OpenAI chat parameter and
 * what each kind of upstream does with it (a test keeps the page in step).
 */
export function parameterRows(): string[][] {
  const header = ["parameter", "local node", "external runtime", ...CLOUDS.map((c) => `\`${c}:\``), "on a local node"];
  const clouds = CLOUDS.map((c) => cloudParamSupport(c));
  const rows = Object.entries(CHAT_PARAMS).map(([name, p]) => [
    `\`${name}\``,
    p.node,
    "passed",
    ...clouds.map((t, i) => (CLOUDS[i] === "openai" ? "passed" : t[name])),
    p.note ?? "",
  ]);
  return [header, ...rows];
}

/** parameterRows() as a Markdown table. */
export function parameterTable(): string {
  const [header, ...rows] = parameterRows();
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Puts parameterTable() between the `parameters` markers of a Markdown file (`npm run docs:params`). */
export function writeParameterTable(file: string): void {
  const page = fs.readFileSync(file, "utf8");
  const out = page.replace(
    /(<!-- parameters:start -->)[\s\S]*?(<!-- parameters:end -->)/,
    (_m, start: string, end: string) => `${start}\n\n${parameterTable()}\n\n${end}`,
  );
  fs.writeFileSync(file, out);
}
