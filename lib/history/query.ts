/**
 * History filters from a query string, validated and mapped to a store query
 * by our code: nothing a client sends reaches the store as an operator, and
 * `q` is matched as plain text.
 */
import { z } from "zod";
import { parseBody } from "../openai/schemas";

export const MAX_PER_PAGE = 200;

const text = z.string().trim().min(1).max(256);
const date = z
  .string()
  .max(64)
  .refine((s) => !Number.isNaN(Date.parse(s)), "must be an ISO 8601 date")
  .transform((s) => Date.parse(s));

export const filterSchema = z.object({
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  per_page: z.coerce
    .number()
    .int()
    .min(1)
    .default(50)
    .transform((n) => Math.min(n, MAX_PER_PAGE)),
  model: text.optional(),
  node: text.optional(),
  kind: z.enum(["chat", "completion", "embedding", "rerank", "legacy", "cloud", "responses"]).optional(),
  status: z.union([z.enum(["success", "error"]), z.coerce.number().int().min(100).max(599)]).optional(),
  from: date.optional(),
  to: date.optional(),
  q: text.optional(),
  format: z.enum(["json", "csv"]).default("json"),
});

export type HistoryFilter = z.infer<typeof filterSchema>;

/** Query-string values as the gateway parsed them into a validated filter (400 on anything else). */
export function parseFilter(query: unknown): HistoryFilter {
  return parseBody(filterSchema, query ?? {});
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The lower-cased text `q` searches in: both bodies. */
export function searchText(request: unknown, response: unknown): string {
  return textOf(JSON.stringify(request ?? null), JSON.stringify(response ?? null));
}

/** The same from the bodies' JSON text. */
export function textOf(requestJson: string | undefined, responseJson: string | undefined): string {
  return `${requestJson ?? "null"}\n${responseJson ?? "null"}`.toLowerCase();
}

/** The store query (NeDB and MongoDB both understand it) for a filter. */
export function storeQuery(f: HistoryFilter): Record<string, unknown> {
  const q: Record<string, unknown> = {};
  if (f.model) q.model = f.model;
  if (f.node) q.node_id = f.node;
  if (f.kind) q.kind = f.kind;
  if (f.status === "success") q.status = { $lt: 400 };
  else if (f.status === "error") q.status = { $gte: 400 };
  else if (typeof f.status === "number") q.status = f.status;
  if (f.from !== undefined || f.to !== undefined) {
    const ts: Record<string, number> = {};
    if (f.from !== undefined) ts.$gte = f.from;
    if (f.to !== undefined) ts.$lte = f.to;
    q.ts = ts;
  }
  if (f.q) q.search_text = { $regex: new RegExp(escapeRegExp(f.q.toLowerCase())) };
  return q;
}
