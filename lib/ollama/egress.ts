/**
 * The router's OpenAI answers in Ollama's shapes: a chat or generate answer
 * whole, or as NDJSON lines while the chunks come (text as it arrives, tool
 * calls once whole, then the `done` line with the reason, the token counts
 * and the durations in nanoseconds). Format: github.com/ollama/ollama docs/api.md.
 */
type Json = Record<string, unknown>;

export type OllamaKind = "chat" | "generate";

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

interface Choice {
  text?: string;
  delta?: {
    content?: string | null;
    tool_calls?: Array<{ index: number; function?: { name?: string; arguments?: string } }>;
  };
  message?: { content?: string | null; tool_calls?: Array<{ function: { name: string; arguments: string } }> };
  finish_reason?: string | null;
}

interface Answer {
  choices?: Choice[];
  usage?: Usage | null;
}

/** Ollama's `done_reason`: `stop` (tool calls too) or `length`. */
function doneReason(finish: string | null | undefined): string {
  return finish === "length" ? "length" : "stop";
}

/** A tool call's arguments as the object Ollama sends (text that is no JSON object is kept as it is). */
function argumentsOf(text: string): unknown {
  try {
    const parsed: unknown = JSON.parse(text || "{}");
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : text;
  } catch {
    return text;
  }
}

/** The clock of one answer: durations in nanoseconds, as Ollama reports them. */
export class OllamaClock {
  private readonly started = process.hrtime.bigint();
  private first: bigint | null = null;

  firstToken(): void {
    this.first ??= process.hrtime.bigint();
  }

  /** The `done` line's counts and durations. */
  totals(usage: Usage | null | undefined, loadMs = 0): Json {
    const now = process.hrtime.bigint();
    const first = this.first ?? now;
    return {
      total_duration: Number(now - this.started),
      load_duration: Math.round(loadMs * 1e6),
      prompt_eval_count: usage?.prompt_tokens ?? 0,
      prompt_eval_duration: Number(first - this.started),
      eval_count: usage?.completion_tokens ?? 0,
      eval_duration: Number(now - first),
    };
  }
}

const head = (model: string) => ({ model, created_at: new Date().toISOString() });

/** A finished answer in Ollama's shape. */
export function toOllama(kind: OllamaKind, model: string, answer: unknown, clock: OllamaClock): Json {
  const a = answer as Answer;
  const choice = a.choices?.[0] ?? {};
  const text = choice.message?.content ?? choice.text ?? "";
  const totals = clock.totals(a.usage);
  const reason = doneReason(choice.finish_reason);
  if (kind === "generate") {
    return { ...head(model), response: text, done: true, done_reason: reason, context: [], ...totals };
  }
  const message: Json = { role: "assistant", content: text };
  const calls = choice.message?.tool_calls;
  if (calls?.length) {
    message.tool_calls = calls.map((c) => ({
      function: { name: c.function.name, arguments: argumentsOf(c.function.arguments) },
    }));
  }
  return { ...head(model), message, done: true, done_reason: reason, ...totals };
}

/** A stream of chunks as Ollama's lines, one `push` per chunk and `end` for the last. */
export class OllamaStreamWriter {
  private usage: Usage | null = null;
  private finish: string | null = null;
  private readonly calls: Array<{ name: string; args: string }> = [];

  constructor(
    private readonly kind: OllamaKind,
    private readonly model: string,
    private readonly clock: OllamaClock,
  ) {}

  push(chunk: unknown): Json[] {
    const c = chunk as Answer;
    if (c.usage) this.usage = c.usage;
    const choice = c.choices?.[0];
    if (!choice) return [];
    if (choice.finish_reason) this.finish = choice.finish_reason;
    for (const t of choice.delta?.tool_calls ?? []) {
      const call = (this.calls[t.index] ??= { name: "", args: "" });
      call.name += t.function?.name ?? "";
      call.args += t.function?.arguments ?? "";
      // a tool call's tokens are the answer's too: eval_duration counts from the first
      this.clock.firstToken();
    }
    const text = choice.delta?.content ?? choice.text ?? "";
    if (!text) return [];
    this.clock.firstToken();
    return [this.line(text)];
  }

  /** What is left: the tool calls, once whole (chat), then the `done` line. */
  end(loadMs = 0): Json[] {
    const out: Json[] = [];
    if (this.kind === "chat" && this.calls.length) {
      out.push({
        ...head(this.model),
        message: {
          role: "assistant",
          content: "",
          tool_calls: this.calls.map((c) => ({ function: { name: c.name, arguments: argumentsOf(c.args) } })),
        },
        done: false,
      });
    }
    const totals = this.clock.totals(this.usage, loadMs);
    const last =
      this.kind === "chat"
        ? { ...head(this.model), message: { role: "assistant", content: "" } }
        : { ...head(this.model), response: "" };
    out.push({
      ...last,
      done: true,
      done_reason: doneReason(this.finish),
      ...(this.kind === "generate" ? { context: [] } : {}),
      ...totals,
    });
    return out;
  }

  private line(text: string): Json {
    return this.kind === "chat"
      ? { ...head(this.model), message: { role: "assistant", content: text }, done: false }
      : { ...head(this.model), response: text, done: false };
  }
}
