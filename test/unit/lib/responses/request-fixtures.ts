import { parseResponsesRequest } from "../../../../lib/responses/request";
import { chatSchema, parseBody } from "../../../../lib/openai/schemas";

// Shared by request.test.ts (input items, messages) and request-tools.test.ts (tools and top-level fields).

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const WEATHER = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
export const fnTool = (name: string, extra: object = {}) => ({ type: "function", name, parameters: WEATHER, ...extra });

export const parse = (body: object) => parseResponsesRequest({ model: "m", ...body });
export const chatOf = (body: object): Json => parse(body).chat;
/** The chat body is one the chat path accepts. */
export const valid = (chat: Record<string, unknown>) => parseBody(chatSchema(32768), chat);

/** The 400 a body gets: [status, code, param], and the message. */
export function refusal(body: unknown): { status?: number; code?: string; param?: string | null; message?: string } {
  try {
    parseResponsesRequest(body);
  } catch (e) {
    const err = e as { code?: number; type?: string; message?: string; data?: { param?: string | null } };
    return { status: err.code, code: err.type, param: err.data?.param, message: err.message };
  }
  throw new Error("no error");
}
export const expect400 = (body: object, code: string, param: string | null, message?: RegExp) => {
  const r = refusal({ model: "m", input: "hi", ...body });
  expect([r.status, r.code, r.param]).toEqual([400, code, param]);
  if (message) expect(r.message).toMatch(message);
};
