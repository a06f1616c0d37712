/**
 * Ollama's API on a listener of its own (LLM_ROUTER_OLLAMA_PORT,
 * conventionally 11434), for apps that speak only Ollama: the seed's
 * `/api/chat` and `/api/generate` on the main port answer in OpenAI's
 * format, so Ollama's cannot live there. Its requests are translated
 * (lib/ollama/ingress.ts) and served by the same request path as `/v1`
 * (routing, fallbacks, history, metrics, limits), answered in Ollama's
 * shapes (services/api/ollama-responder.ts). The same API keys, as Bearer;
 * each route is admitted as the `/v1` route it stands for (its scopes and
 * limits). Errors are `{"error": "…"}` with a 4xx.
 */
import { createHash } from "node:crypto";
import http, { type ServerResponse } from "node:http";
import { routerCore } from "../../lib/core/router-core";
import { jsonBody, readJsonBody } from "../../lib/http/body";
import { sendJson } from "../../lib/http/respond";
import { apiError, modelNotFound } from "../../lib/openai/errors";
import { chatRequest, embedRequest, generateRequest } from "../../lib/ollama/ingress";
import { admit } from "../../mixins/auth-gate.mixin";
import type { Gateway } from "./gateway";
import { embeddings, generate } from "./inference";
import { allModels, type ModelObject } from "./live-routes";
import { ollamaResponder, sendOllamaError } from "./ollama-responder";
import type { Req, Responder } from "./types";

/** The Ollama version clients are told (the API of which this is a subset). */
export const OLLAMA_VERSION = "0.9.0";

type OllamaHandler = (gw: Gateway, req: Req, res: ServerResponse) => Promise<void>;

interface Route {
  /** The `/v1` route it is admitted as: its key scopes and limits apply. */
  as: [string, string];
  body: boolean;
  handle: OllamaHandler;
}

/** `llama3:latest` is `llama3`: Ollama's default tag names the model itself. */
function modelName(name: string): string {
  return name.endsWith(":latest") ? name.slice(0, -":latest".length) : name;
}

const errorsOnly = { error: sendOllamaError } as unknown as Responder;

/** What Ollama's lists say of a model: its size, format and quantisation where a node has its file. */
function describe(gw: Gateway, m: ModelObject) {
  const entries = routerCore(gw.broker)
    .table.list()
    .flatMap((n) => n.catalog?.filter((c) => c.id === m.id) ?? []);
  const entry = entries[0];
  return {
    name: m.id,
    model: m.id,
    modified_at: new Date((m.created || 0) * 1000).toISOString(),
    size: entry?.sizeBytes ?? 0,
    digest: createHash("sha256").update(m.id).digest("hex"),
    details: {
      parent_model: "",
      format: m.owned_by === "llm-router" ? "gguf" : "cloud",
      family: "",
      families: [] as string[],
      parameter_size: "",
      quantization_level: entry?.quantization ?? "",
    },
  };
}

async function visibleModels(gw: Gateway, req: Req): Promise<ModelObject[]> {
  return (await allModels(req)).filter((m) => gw.visibleTo(req, m.id));
}

async function findModel(gw: Gateway, req: Req, raw: unknown): Promise<ModelObject> {
  if (typeof raw !== "string" || !raw) throw apiError(400, "model is required", "invalid_request", { param: "model" });
  const id = modelName(raw);
  const m = (await visibleModels(gw, req)).find((x) => x.id === id);
  if (!m) throw modelNotFound(raw);
  return m;
}

const ROUTES: Record<string, Route> = {
  "GET /api/version": {
    as: ["GET", "/v1/models"],
    body: false,
    handle: async (_gw, _req, res) => sendJson(res, 200, { version: OLLAMA_VERSION }),
  },
  "GET /api/tags": {
    as: ["GET", "/v1/models"],
    body: false,
    handle: async (gw, req, res) =>
      sendJson(res, 200, { models: (await visibleModels(gw, req)).map((m) => describe(gw, m)) }),
  },
  "GET /api/ps": {
    as: ["GET", "/v1/models"],
    body: false,
    handle: async (gw, req, res) => {
      const loaded = (await visibleModels(gw, req)).filter((m) => m.status === "loaded");
      const never = new Date(Date.now() + 365 * 86_400_000).toISOString();
      sendJson(res, 200, {
        models: loaded.map((m) => ({ ...describe(gw, m), expires_at: never, size_vram: 0 })),
      });
    },
  },
  "POST /api/show": {
    as: ["GET", "/v1/models"],
    body: true,
    handle: async (gw, req, res) => {
      const body = (req.body ?? {}) as { model?: unknown; name?: unknown };
      const m = await findModel(gw, req, body.model ?? body.name);
      const node = routerCore(gw.broker)
        .table.list()
        .flatMap((n) => n.models.filter((x) => x.id === m.id))[0];
      const { details } = describe(gw, m);
      sendJson(res, 200, {
        modelfile: "",
        parameters: "",
        template: "",
        details,
        model_info: node ? { "general.context_length": node.contextSize } : {},
        capabilities: ["completion", "tools", "embedding"],
        modified_at: new Date((m.created || 0) * 1000).toISOString(),
      });
    },
  },
  "POST /api/chat": {
    as: ["POST", "/v1/chat/completions"],
    body: true,
    handle: async (gw, req, res) => {
      gw.runTraced(
        req,
        res,
        "chat",
        async (t) => {
          const { body } = chatRequest(req.body);
          const asked = body.model as string;
          body.model = modelName(asked);
          await generate(gw, req, res, "chat", t, { body, responder: ollamaResponder("chat", asked) });
        },
        errorsOnly,
      );
    },
  },
  "POST /api/generate": {
    as: ["POST", "/v1/chat/completions"],
    body: true,
    handle: async (gw, req, res) => {
      const parsed = generateRequest(req.body);
      const asked = parsed.body.model as string;
      if (parsed.load) {
        // an empty prompt asks only that the model be ready: it is, or it is loaded by its first request
        await findModel(gw, req, asked);
        sendJson(res, 200, {
          model: asked,
          created_at: new Date().toISOString(),
          response: "",
          done: true,
          done_reason: "load",
        });
        return;
      }
      parsed.body.model = modelName(asked);
      const kind = parsed.raw ? "completion" : "chat";
      gw.runTraced(
        req,
        res,
        parsed.raw ? "completion" : "chat",
        (t) => generate(gw, req, res, kind, t, { body: parsed.body, responder: ollamaResponder("generate", asked) }),
        errorsOnly,
      );
    },
  },
  "POST /api/embed": {
    as: ["POST", "/v1/embeddings"],
    body: true,
    handle: async (gw, req, res) => embed(gw, req, res, false),
  },
  "POST /api/embeddings": {
    as: ["POST", "/v1/embeddings"],
    body: true,
    handle: async (gw, req, res) => embed(gw, req, res, true),
  },
};

/** `/api/embed` → `{model, embeddings, …}`; the older `/api/embeddings` → `{embedding}`. */
async function embed(gw: Gateway, req: Req, res: ServerResponse, legacy: boolean): Promise<void> {
  const started = process.hrtime.bigint();
  gw.runTraced(
    req,
    res,
    "embedding",
    async (t) => {
      const { body } = embedRequest(req.body, legacy);
      const asked = body.model as string;
      body.model = modelName(asked);
      await embeddings(gw, req, res, t, {
        body,
        respond: (out, answer) => {
          const vectors = answer.data.map((d) => d.embedding as number[]);
          if (legacy) return sendJson(out, 200, { embedding: vectors[0] ?? [] });
          sendJson(out, 200, {
            model: asked,
            embeddings: vectors,
            total_duration: Number(process.hrtime.bigint() - started),
            load_duration: 0,
            prompt_eval_count: answer.usage?.prompt_tokens ?? 0,
          });
        },
      });
    },
    errorsOnly,
  );
}

/** The listener's request handler. */
export function ollamaListener(gw: Gateway, maxBodySize: string): http.RequestListener {
  const parseJson = jsonBody({ limit: maxBodySize });
  return (rawReq, res) => {
    const req = rawReq as Req;
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/" && (req.method === "GET" || req.method === "HEAD")) {
      res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(req.method === "HEAD" ? undefined : "Ollama is running");
      return;
    }
    const route = ROUTES[`${req.method} ${path}`];
    if (!route) {
      const known = Object.keys(ROUTES).some((k) => k.endsWith(` ${path}`));
      sendOllamaError(
        res,
        known
          ? apiError(405, `${req.method} is not allowed on ${path}.`, "method_not_allowed")
          : apiError(404, `${path} not found`, "not_found"),
      );
      return;
    }
    const ctx = gw.broker.ContextFactory.create(gw.broker);
    (req as Req & { originalUrl?: string }).originalUrl = `ollama:${path}`;
    void (async () => {
      await admit(gw, ctx, route.as[0], route.as[1], req, res);
      if (route.body) await readJsonBody(parseJson, req, res);
      req.$ctx = ctx;
      await route.handle(gw, req, res);
    })().catch((err: unknown) => {
      if (sendOllamaError(res, err) >= 500) gw.logger.warn(`ollama ${path} failed: ${(err as Error)?.message}`);
    });
  };
}
