/**
 * `POST /v1/rerank`: documents scored against a query by a reranker model,
 * in the shape llama.cpp's server, Jina and Cohere share: `results` of
 * `{index, relevance_score}` (and `document` with `return_documents`),
 * highest first, the first `top_n`. Served like embeddings: a local node
 * (node-llama-cpp's ranking context), or an external runtime as it is
 * (`/rerank`); aliases and fallbacks apply. Cloud models have no rerank here.
 */
import type { ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import type { RequestTrace } from "../../lib/history/record";
import { sendJson } from "../../lib/http/respond";
import { rerankJob } from "../../lib/openai/jobs";
import { parseBody, rerankSchema } from "../../lib/openai/schemas";
import { cloudModel } from "../../lib/providers/index";
import type { Call } from "../../lib/upstreams/types";
import type { Gateway } from "./gateway";
import { cloudOnlyChat, serve, sourceFor, withFallbacks } from "./inference";
import type { Req } from "./types";

interface Scored {
  index: number;
  relevance_score: number;
}

/** What an upstream answered: a node's `{scores}`, or a runtime's `{results}`. */
function scoresOf(answer: unknown, count: number): Scored[] {
  const a = answer as {
    scores?: number[];
    results?: Array<{ index?: number; relevance_score?: number; score?: number }>;
  };
  if (Array.isArray(a.scores)) return a.scores.map((s, index) => ({ index, relevance_score: s }));
  return (a.results ?? [])
    .map((r) => ({ index: Number(r.index), relevance_score: Number(r.relevance_score ?? r.score) }))
    .filter((r) => Number.isInteger(r.index) && r.index >= 0 && r.index < count);
}

export async function rerank(gw: Gateway, req: Req, res: ServerResponse, trace: RequestTrace): Promise<void> {
  const body = parseBody(rerankSchema, req.body);
  const requested = body.model;
  if (cloudModel(requested)) throw cloudOnlyChat(requested);
  trace.model = requested;
  gw.checkModelAllowed(req, requested);
  const requestId = `rerank-${randomUUID().replace(/-/g, "")}`;
  const job = rerankJob(body);
  await withFallbacks(gw, req, res, trace, requested, async (model, waitMs) => {
    if (cloudModel(model)) throw cloudOnlyChat(model);
    const call: Call = {
      op: "rerank",
      requestId,
      model,
      stream: false,
      job: model === job.model ? job : { ...job, model },
      body: body.model === model ? body : { ...body, model },
    };
    await serve(gw, res, trace, sourceFor(gw, req, call, undefined, waitMs), call, async (result) => {
      const usage = (result as { usage?: { prompt_tokens?: number; total_tokens?: number } }).usage;
      const ranked = scoresOf(result, job.documents.length).sort((a, b) => b.relevance_score - a.relevance_score);
      const results = ranked
        .slice(0, body.top_n ?? ranked.length)
        .map((r) => (body.return_documents ? { ...r, document: { text: job.documents[r.index] } } : r));
      const tokens = usage?.prompt_tokens ?? usage?.total_tokens ?? 0;
      const answer = {
        id: requestId,
        object: "list",
        model: requested,
        results,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      };
      trace.firstByte();
      trace.answered({ object: "list", results: results.length, usage: answer.usage }, answer.usage);
      sendJson(res, 200, answer);
      return "ok";
    });
  });
}
