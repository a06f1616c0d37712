import { grammarSchema } from "../../../../lib/openai/json-schema";

/** Shared by json-schema.test.ts (what passes) and json-schema-refusals.test.ts (what is refused). */
export const P = "response_format.json_schema.schema";

/** The 400 grammarSchema throws for `schema`: status, code, param and message. */
export function refusal(schema: unknown, param = P) {
  try {
    grammarSchema(schema, param);
  } catch (err) {
    const e = err as { code: number; type: string; data: { param: string | null }; message: string };
    return { status: e.code, code: e.type, param: e.data.param, message: e.message };
  }
  throw new Error("expected a 400");
}
export const unsupportedAt = (param: string) => ({ status: 400, code: "unsupported_schema_keyword", param });
export const invalidAt = (param: string) => ({ status: 400, code: "invalid_schema", param });
export const obj = (properties: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  type: "object",
  properties,
  ...more,
});
