/**
 * `llm-router alias …` and `llm-router fallback …`: model aliases and
 * fallback chains through a running router's API (LLM_ROUTER_URL), logged in
 * as the `model` commands are (bin/models-cli.ts).
 */
import { parseArgs } from "node:util";
import { api } from "./models-cli";

interface AliasView {
  alias: string;
  model: string;
  fallbacks: string[];
  created_at: string;
}

interface FallbackView {
  model: string;
  fallbacks: string[];
}

interface AliasList {
  aliases: AliasView[];
  fallbacks: FallbackView[];
}

const USAGE_ALIAS =
  "usage: llm-router alias add <alias> <model> [--fallback M]… | alias list [--json] | alias rm <alias>";
const USAGE_FALLBACK =
  "usage: llm-router fallback set <model> <fallback>… | fallback list [--json] | fallback rm <model>";

const enc = encodeURIComponent;
const then = (fallbacks: string[]) => (fallbacks.length ? `, then ${fallbacks.join(", ")}` : "");

export async function aliasCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { fallback: { type: "string", multiple: true }, json: { type: "boolean", default: false } },
  });
  const [sub, name, model, ...extra] = positionals;
  const a = api();
  switch (sub) {
    case "add": {
      if (!name || !model || extra.length) throw new Error(USAGE_ALIAS);
      const body = { alias: name, model, fallbacks: values.fallback ?? [] };
      const e = (await a.send("POST", "/api/aliases", body)) as AliasView;
      console.log(`alias ${e.alias} → ${e.model}${then(e.fallbacks)}`);
      return;
    }
    case "list": {
      const { aliases } = (await a.send("GET", "/api/aliases")) as AliasList;
      if (values.json) return console.log(JSON.stringify(aliases, null, 2));
      if (!aliases.length) return console.log("(no aliases)");
      for (const e of aliases)
        console.log(`${e.alias}\t→ ${e.model}\tfallbacks: ${e.fallbacks.join(", ") || "(none)"}`);
      return;
    }
    case "rm": {
      if (!name || model) throw new Error(USAGE_ALIAS);
      await a.send("DELETE", `/api/aliases/${enc(name)}`);
      console.log(`removed alias ${name}`);
      return;
    }
    default:
      throw new Error(USAGE_ALIAS);
  }
}

export async function fallbackCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: "boolean", default: false } },
  });
  const [sub, model, ...fallbacks] = positionals;
  const a = api();
  switch (sub) {
    case "set": {
      if (!model || !fallbacks.length) throw new Error(USAGE_FALLBACK);
      await a.send("PUT", `/api/fallbacks/${enc(model)}`, { fallbacks });
      console.log(`${model}${then(fallbacks)}`);
      return;
    }
    case "list": {
      const list = ((await a.send("GET", "/api/aliases")) as AliasList).fallbacks;
      if (values.json) return console.log(JSON.stringify(list, null, 2));
      if (!list.length) return console.log("(no fallbacks)");
      for (const f of list) console.log(`${f.model}\tfallbacks: ${f.fallbacks.join(", ")}`);
      return;
    }
    case "rm": {
      if (!model || fallbacks.length) throw new Error(USAGE_FALLBACK);
      await a.send("DELETE", `/api/fallbacks/${enc(model)}`);
      console.log(`removed the fallbacks of ${model}`);
      return;
    }
    default:
      throw new Error(USAGE_FALLBACK);
  }
}
