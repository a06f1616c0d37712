/**
 * Responses requests passed through to an upstream that speaks the API
 * itself (`openai:` models, runtimes that list `/responses`) instead of being
 * translated to chat: the body the upstream gets, and the events it sends
 * back, relayed as they are.
 */
import { conversationOf, type Item, type StoredResponse } from "./store";

/** A Responses request for an upstream that speaks the API. */
export interface NativeResponses {
  /** The client's validated body. */
  body: Record<string, unknown>;
  /** The stored response its `previous_response_id` continues, if any. */
  previous: StoredResponse | null;
}

/** Who gets it: OpenAI runs its hosted tools and keeps its responses; a runtime is sent function tools only. */
export type NativeTarget = "openai" | "runtime";

/** The function tools of a tool list (a namespace's flattened); hosted tools only their provider runs are left out. */
function functionTools(tools: unknown): Item[] {
  const out: Item[] = [];
  for (const t of Array.isArray(tools) ? (tools as Item[]) : []) {
    if (t.type === "function") out.push(t);
    else if (t.type === "namespace" && Array.isArray(t.tools)) {
      for (const inner of t.tools as Item[]) if (inner.type === "function") out.push(inner);
    }
  }
  return out;
}

/** Items made by the router or another upstream, as new input: their ids named nothing the target knows. */
const asInput = (items: Item[]): Item[] =>
  items.map((item) => {
    const { id: _id, status: _status, ...rest } = item;
    void _id;
    void _status;
    return rest as Item;
  });

/**
 * The body `target` gets: the client's, with the upstream's model name. A
 * continuation OpenAI made and keeps goes on by its `previous_response_id`;
 * any other carries the conversation before it in `input`. A runtime gets
 * only function tools (hosted ones, left out, are named to the client in
 * X-Router-Dropped-Tools as on the chat path).
 */
export function nativeBody(n: NativeResponses, target: NativeTarget, model: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...n.body, model };
  const prev = n.previous;
  if (prev && !(target === "openai" && prev.producer === "openai")) {
    delete out.previous_response_id;
    const input =
      typeof n.body.input === "string" ? [{ type: "message", role: "user", content: n.body.input }] : n.body.input;
    out.input = [...asInput(conversationOf(prev)), ...((input as Item[] | undefined) ?? [])];
  }
  if (target === "runtime" && Array.isArray(n.body.tools)) {
    const tools = functionTools(n.body.tools);
    if (tools.length) out.tools = tools;
    else {
      delete out.tools;
      delete out.tool_choice;
      delete out.parallel_tool_calls;
    }
  }
  return out;
}

/** The events that end a Responses stream, carrying the final response. */
export const FINAL_EVENTS = new Set(["response.completed", "response.incomplete", "response.failed"]);

/** A Responses object or event with the model as the client named it (`openai:gpt-4o-mini`, not OpenAI's name). */
export function stampModel<T extends Record<string, unknown>>(value: T, model: string): T {
  if (value.object === "response") return { ...value, model };
  const response = value.response as Record<string, unknown> | undefined;
  if (response && typeof response === "object") return { ...value, response: { ...response, model } };
  return value;
}
