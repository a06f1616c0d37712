/**
 * Tool calls and structured output on node-llama-cpp. Function calling is
 * node-llama-cpp's own (its chat wrapper documents the functions in the
 * model's template and parses calls with grammars); what OpenAI adds is made
 * here: a forced call (`tool_choice` "required" or a named function) starts
 * the answer inside the wrapper's call syntax, so that a grammar writes a
 * well-formed call whatever the weights; `response_format` becomes a
 * JSON-schema grammar, compiled once per schema.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type {
  ChatModelFunctions,
  ChatWrapper,
  ChatWrapperGenerateContextStateOptions,
  ChatWrapperGeneratedContextState,
  Llama,
  LlamaGrammar,
} from "node-llama-cpp" with { "resolution-mode": "import" };
import type { ChatJob } from "./types";

type NodeLlamaCpp = typeof import("node-llama-cpp", { with: { "resolution-mode": "import" } });

/** OpenAI-style call ids. */
export function callId(): string {
  return `call_${randomBytes(12).toString("base64url")}`;
}

/** The functions the model may call for this job (none for tool_choice "none"; only the named one when named). */
export function functionsOf(job: ChatJob): ChatModelFunctions | undefined {
  if (!job.tools?.length || job.toolChoice === "none") return undefined;
  const named = typeof job.toolChoice === "object" ? job.toolChoice.name : null;
  const out: Record<string, { description?: string; params?: object }> = {};
  for (const t of job.tools) {
    if (named && t.name !== named) continue;
    out[t.name] = { description: t.description, params: t.parameters };
  }
  return out as ChatModelFunctions;
}

/** Whether the answer must be a call. */
export function isForced(job: ChatJob): boolean {
  return !!job.tools?.length && (job.toolChoice === "required" || typeof job.toolChoice === "object");
}

/**
 * `base` with the answer already opened by its call prefix, in function-call
 * mode from the first token: node-llama-cpp then generates only a function
 * name from the list and parameters matching its schema.
 */
export function forcedCallWrapper(lib: NodeLlamaCpp, base: ChatWrapper): ChatWrapper {
  const forced = Object.create(base) as ChatWrapper;
  forced.generateContextState = (options: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState => {
    const state = base.generateContextState(options);
    // an initially engaged state carries no prefix triggers: the call is not detected, it has begun
    return {
      contextText: lib.LlamaText([state.contextText, base.settings.functions.call.prefix]),
      stopGenerationTriggers: state.stopGenerationTriggers,
      ignoreStartText: state.ignoreStartText,
      functionCall: { initiallyEngaged: true, disengageInitiallyEngaged: [] },
    };
  };
  return forced;
}

/** Compiled grammars by schema: compiling one takes a while; a few hundred stay. */
export class GrammarCache {
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();

  constructor(
    private readonly llama: Llama,
    private readonly max = 256,
  ) {}

  /** The grammar of a job's response_format, or undefined when the answer is free text or a call. */
  forJob(job: ChatJob): Promise<LlamaGrammar> | undefined {
    const rf = job.responseFormat;
    if (!rf || isForced(job)) return undefined;
    if (rf.type === "json_object") return this.get("json", () => this.llama.getGrammarFor("json"));
    const key = JSON.stringify(rf.schema);
    // the schema was checked and rewritten into what the grammar expresses (lib/openai/json-schema.ts)
    return this.get(key, () => this.llama.createGrammarForJsonSchema(rf.schema as never));
  }

  private get(key: string, make: () => Promise<LlamaGrammar>): Promise<LlamaGrammar> {
    const hit = this.grammars.get(key);
    if (hit) {
      // most recently used last
      this.grammars.delete(key);
      this.grammars.set(key, hit);
      return hit;
    }
    const made = make();
    made.catch(() => this.grammars.delete(key));
    this.grammars.set(key, made);
    if (this.grammars.size > this.max) this.grammars.delete(this.grammars.keys().next().value as string);
    return made;
  }
}

let tightened = false;

/**
 * node-llama-cpp's JSON grammar lets an `integer` have an exponent
 * (`22759779955e-25172596`, which is no integer; `1e3832725246995228`, which
 * JavaScript reads as Infinity) and a `number` any exponent. Here an integer
 * is digits only and an exponent has at most two digits, so every number a
 * grammar admits is finite and an integer is one. Patched once per process,
 * on node-llama-cpp's own module (pinned at 3.21.1; test/unit checks it).
 */
export async function tightenNumberGrammar(): Promise<void> {
  if (tightened) return;
  const dist = path.dirname(require.resolve("node-llama-cpp"));
  const file = path.join(dist, "utils", "gbnfJson", "terminals", "GbnfNumber.js");
  const mod = (await import(pathToFileURL(file).href)) as {
    GbnfNumber: { prototype: { getGrammar(this: { allowFractional: boolean }): string } };
  };
  mod.GbnfNumber.prototype.getGrammar = function (this: { allowFractional: boolean }) {
    const integer = '"-"? ("0" | [1-9] [0-9]{0,15})';
    return this.allowFractional ? integer + ' ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?' : integer;
  };
  tightened = true;
}
