import type { ResponseMeta } from "../../../../lib/responses/output";

// Shared by output.test.ts (whole answers) and output-stream.test.ts (the event stream).

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const meta = (echo: Record<string, unknown> = {}): ResponseMeta => ({
  id: "resp_0123",
  model: "qwen3-8b",
  createdAt: 1_700_000_000,
  echo,
});
export const USAGE = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 };
export const RESPONSE_USAGE = {
  input_tokens: 12,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 7,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 19,
};
