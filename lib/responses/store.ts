/**
 * Stored responses (`store`, the default): what the responses service keeps
 * of a response, who may read it, the conversation a `previous_response_id`
 * continues, and the pages of `GET /v1/responses/{id}/input_items`.
 * Format: platform.openai.com/docs/api-reference/responses (retrieve, delete, input items).
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { apiError, badRequest } from "../openai/errors";
import { parseBody } from "../openai/schemas";

export type Item = Record<string, unknown> & { type: string };

/** Where the response was made: the router's chat path, or passed through to an upstream that speaks the API. */
export type Producer = "router" | "openai" | "runtime";

/** A stored response as the responses service keeps it: items and the response as JSON text (schemas carry `$ref`). */
export interface StoredResponse {
  id: string;
  /** Who may read it (scopeOf). */
  scope: string;
  /** When it was made (ms epoch): retention counts from here. */
  ts: number;
  model: string;
  /** The node or upstream that answered (`X-Router-Node`): a continuation prefers it, its cache holds the conversation. */
  node_id: string | null;
  producer: Producer;
  /** The items of the turns before this one (theirs in order: input, then output), as JSON text. */
  prefix_json: string;
  /** This request's own input items, each with an id, as JSON text. */
  input_json: string;
  /** The response object the client got, as JSON text. */
  response_json: string;
}

/** The request's credentials, as the gate set them. */
export type Owner =
  { kind: "apiKey"; key: { id: string } | null } | { kind: "user"; claims: { sub: string } } | { kind: string };

/**
 * Who a stored response belongs to: the API key that made it (another key,
 * even of the same user, gets a 404), a dashboard login (the playground), or
 * everyone when the router runs without keys (LLM_ROUTER_AUTH_DISABLED).
 */
export function scopeOf(owner: Owner | undefined): string {
  if (owner?.kind === "apiKey") {
    const key = (owner as { key: { id: string } | null }).key;
    return key ? `key:${key.id}` : "open";
  }
  if (owner?.kind === "user") return `user:${(owner as { claims: { sub: string } }).claims.sub}`;
  return "open";
}

const ID_PREFIX: Record<string, string> = {
  message: "msg",
  function_call: "fc",
  function_call_output: "fco",
  reasoning: "rs",
};

/** Input items with an `id` each (the ones a client sent keep theirs): input_items lists and pages by id. */
export function withItemIds(items: Item[]): Item[] {
  return items.map((item) =>
    typeof item.id === "string" && item.id
      ? item
      : { ...item, id: `${ID_PREFIX[item.type] ?? "item"}_${randomBytes(24).toString("hex")}` },
  );
}

/**
 * The conversation a response ends, for a request that continues it: the
 * earlier turns, this one's input, and its output (messages and function
 * calls; its instructions are not carried over, as OpenAI does).
 */
export function conversationOf(stored: StoredResponse): Item[] {
  const response = JSON.parse(stored.response_json) as { output?: Item[] };
  const output = (response.output ?? []).filter((i) => i.type === "message" || i.type === "function_call");
  return [...(JSON.parse(stored.prefix_json) as Item[]), ...(JSON.parse(stored.input_json) as Item[]), ...output];
}

/** The answer when a response is not there for this owner (never saying whether it exists for another). */
export const responseNotFound = (id: string) =>
  apiError(404, `No response with id '${id}' found.`, "not_found", { param: "response_id" });

/** A `previous_response_id` that is not there for this owner (or expired): OpenAI's 400. */
export const previousNotFound = (id: string) =>
  badRequest(`Previous response with id '${id}' not found.`, "previous_response_id", "previous_response_not_found");

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  order: z.enum(["asc", "desc"]).default("desc"),
  after: z.string().max(256).optional(),
  before: z.string().max(256).optional(),
  // accepted: the router's items have nothing more to include
  include: z.union([z.string(), z.array(z.string())]).optional(),
  "include[]": z.union([z.string(), z.array(z.string())]).optional(),
});

export type ListQuery = z.infer<typeof listQuery>;

/** input_items' query (`limit`, `order`, `after`, `before`): a 400 names a bad one, or one it does not know. */
export function parseListQuery(query: unknown): ListQuery {
  const q = parseBody(listQuery.strict(), query ?? {});
  return q;
}

/** One page of a response's input items, as OpenAI lists them. */
export function inputItemsPage(items: Item[], q: ListQuery) {
  const ordered = q.order === "asc" ? items : [...items].reverse();
  let start = 0;
  let end = ordered.length;
  if (q.after !== undefined) {
    const i = ordered.findIndex((it) => it.id === q.after);
    if (i < 0) throw badRequest(`No input item with id '${q.after}' in this response.`, "after", "invalid_value");
    start = i + 1;
  }
  if (q.before !== undefined) {
    const i = ordered.findIndex((it) => it.id === q.before);
    if (i < 0) throw badRequest(`No input item with id '${q.before}' in this response.`, "before", "invalid_value");
    end = i;
  }
  const data = ordered.slice(start, Math.max(start, end)).slice(0, q.limit);
  return {
    object: "list" as const,
    data,
    first_id: (data[0]?.id as string | undefined) ?? null,
    last_id: (data[data.length - 1]?.id as string | undefined) ?? null,
    has_more: start + data.length < end,
  };
}
