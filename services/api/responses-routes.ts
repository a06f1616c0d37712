/**
 * OpenAI's Responses API: `POST /v1/responses` for every model (translated to
 * the chat path and back), and the stored responses (`store`, the default)
 * read back, listed and deleted by the API key that made them
 * (services/responses.service.ts keeps them).
 */
import type { ServerResponse } from "node:http";
import type { RequestTrace } from "../../lib/history/record";
import { badRequest } from "../../lib/openai/errors";
import { cloudModel } from "../../lib/providers/index";
import { newResponseId } from "../../lib/responses/output";
import { parseResponsesRequest } from "../../lib/responses/request";
import {
  conversationOf,
  inputItemsPage,
  parseListQuery,
  previousNotFound,
  scopeOf,
  withItemIds,
  type Item,
  type Producer,
  type StoredResponse,
} from "../../lib/responses/store";
import type { Gateway, Handler } from "./gateway";
import type { Io } from "./inference";
import { nativeResponder, responsesResponder, type SaveResponse } from "./responses-responder";
import { answer, queryOf } from "./route-helpers";
import type { Req } from "./types";

/** `openai:` models get Responses requests as they are: OpenAI runs its hosted tools. */
const hostedToolsRun = (model: string) => cloudModel(model)?.provider.name === "openai";

/** A stored response of this request's owner (the service's 404 otherwise). */
const stored = (req: Req, id: string) =>
  req.$ctx.call<StoredResponse, { id: string; scope: string }>("responses.get", { id, scope: scopeOf(req.$auth) });

/** The response a `previous_response_id` names, if it is this owner's (else OpenAI's 400 naming the field). */
async function previousOf(req: Req): Promise<StoredResponse | null> {
  const id = (req.body as { previous_response_id?: unknown } | null)?.previous_response_id;
  // any other type is refused by the request's validation
  if (typeof id !== "string" || !id || id.length > 1024) return null;
  try {
    return await stored(req, id);
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) throw previousNotFound(id);
    throw err;
  }
}

/** Keeps a response for its owner, with the conversation it continues; a failure is logged, the client still answered. */
function saver(
  gw: Gateway,
  req: Req,
  res: ServerResponse,
  meta: { model: string; previous: StoredResponse | null; input: Item[] },
): SaveResponse {
  const input = withItemIds(meta.input);
  const prefix = meta.previous ? conversationOf(meta.previous) : [];
  return async (response, producer: Producer = "router") => {
    const node = res.getHeader("x-router-node");
    const record: StoredResponse = {
      id: String(response.id),
      scope: scopeOf(req.$auth),
      ts: Date.now(),
      model: meta.model,
      node_id: typeof node === "string" ? node : null,
      producer,
      prefix_json: JSON.stringify(prefix),
      input_json: JSON.stringify(input),
      response_json: JSON.stringify(response),
    };
    try {
      await req.$ctx.call("responses.save", { record });
    } catch (err) {
      gw.logger.warn(`response ${record.id} was not stored: ${(err as Error).message}`);
    }
  };
}

/**
 * A Responses request on the chat path: its conversation (after the one a
 * `previous_response_id` continues, whose node is preferred: it holds the
 * cache), hosted tools the model cannot run left out and named in
 * `X-Router-Dropped-Tools` and history, the answer saved unless `store: false`.
 */
export async function responsesIo(gw: Gateway, req: Req, res: ServerResponse, trace: RequestTrace): Promise<Io> {
  const previous = await previousOf(req);
  const t = parseResponsesRequest(req.body, previous ? conversationOf(previous) : [], { hostedToolsRun });
  if (t.droppedTools.length) {
    res.setHeader("X-Router-Dropped-Tools", t.droppedTools.join(", "));
    trace.droppedTools = t.droppedTools;
  }
  const model = typeof t.chat.model === "string" ? t.chat.model : "";
  const meta = { id: newResponseId(), model, createdAt: Math.floor(Date.now() / 1000), echo: t.echo };
  const save: SaveResponse =
    t.echo.store === false ? async () => undefined : saver(gw, req, res, { model, previous, input: t.input });
  return {
    body: t.chat,
    responder: responsesResponder(meta, save),
    preferNode: previous?.node_id ?? undefined,
    native: { request: { body: t.body, previous }, responder: (producer) => nativeResponder(save, producer) },
  };
}

/** `GET /v1/responses/{id}`'s query: `include` is accepted (nothing more to include); a stream is not kept to replay. */
function checkRetrieveQuery(req: Req): void {
  for (const [key, value] of Object.entries(queryOf(req))) {
    if (key === "include" || key === "include[]") continue;
    if (key === "stream" && (value === "false" || value === false)) continue;
    if (key === "stream") {
      throw badRequest(
        "Streaming a stored response again is not supported: leave out 'stream'.",
        "stream",
        "unsupported_parameter",
      );
    }
    throw badRequest(`Unrecognized query parameter: '${key}'.`, key, "unknown_parameter");
  }
}

const idOf = (req: Req) => req.$params?.id ?? "";

/** Stored responses, mounted on `/v1`. */
export const responsesAliases: Record<string, Handler> = {
  "GET /responses/:id"(gw, req, res) {
    answer(gw, res, async () => {
      checkRetrieveQuery(req);
      return JSON.parse((await stored(req, idOf(req))).response_json) as unknown;
    });
  },
  "DELETE /responses/:id"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("responses.remove", { id: idOf(req), scope: scopeOf(req.$auth) }));
  },
  "GET /responses/:id/input_items"(gw, req, res) {
    answer(gw, res, async () => {
      const q = parseListQuery(queryOf(req));
      return inputItemsPage(JSON.parse((await stored(req, idOf(req))).input_json) as Item[], q);
    });
  },
};
