/**
 * Cloud models behind the same endpoint: `openai:…`, `google:…`,
 * `anthropic:…` (and the seed's `ahtnorpic:…`). One provider module per cloud
 * in lib/providers/ says how to call it and translate; answers are always
 * OpenAI chat format. Runs in the router process: the api calls it locally
 * and gets a completion or an object-mode chunk stream, as from a node.
 */
import type { Readable } from "node:stream";
import type { Context, Service, ServiceSchema } from "moleculer";
import { cloudConfig, routerConfig, type CloudConfig, type RouterConfig } from "../lib/config";
import { M } from "../lib/metrics/router-metrics";
import { apiError } from "../lib/openai/errors";
import { callProvider, type CallOptions } from "../lib/providers/call";
import { cloudModel, cloudModelNames, providerConfig } from "../lib/providers/index";
import { openaiResponses } from "../lib/providers/openai-responses";
import type {
  OpenAIChatCompletion,
  OpenAIChatRequest,
  Provider,
  ProviderConfig,
  ResponseMeta,
} from "../lib/providers/types";
import { nativeBody, type NativeResponses } from "../lib/responses/passthrough";

interface Settings {
  router: RouterConfig;
  /** Each provider's key, base URL and models, by provider name. */
  clouds: Record<string, CloudConfig>;
}

interface ChatParams {
  /** The validated OpenAI request, `model` with its prefix. */
  request: OpenAIChatRequest;
  meta: ResponseMeta;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
  /** The request's W3C trace context, for the provider. */
  traceparent?: string;
}

interface ResponsesParams {
  /** The client's Responses request, and the stored response it continues. */
  request: NativeResponses;
  /** `openai:<model>`. */
  model: string;
  signal?: AbortSignal;
  traceparent?: string;
}

interface Methods {
  configured(provider: Provider, model: string): ProviderConfig;
  callOptions(provider: string, signal: AbortSignal | undefined, traceparent?: string): CallOptions;
}

type This = Service<Settings> & Methods;

const CloudService: ServiceSchema<Settings, Methods> = {
  name: "cloud",

  actions: {
    /** Local only: the api hands over the request object and gets a stream object back. */
    chat: {
      visibility: "public",
      async handler(this: This, ctx: Context<ChatParams>): Promise<OpenAIChatCompletion | Readable> {
        const { request, meta, signal, traceparent } = ctx.params;
        const target = cloudModel(request.model);
        if (!target) throw apiError(404, `'${request.model}' is not a cloud model.`, "model_not_found");
        const { provider, model } = target;
        const cfg = this.configured(provider, request.model);
        const opts = this.callOptions(provider.name, signal, traceparent);
        return callProvider(provider, cfg, { ...request, model }, meta, opts);
      },
    },
    /**
     * Local only: a Responses request for an `openai:` model, passed through
     * (lib/providers/openai-responses.ts): the response, or an object-mode
     * stream of its events.
     */
    responses: {
      visibility: "public",
      async handler(this: This, ctx: Context<ResponsesParams>): Promise<unknown> {
        const { request, model, signal, traceparent } = ctx.params;
        const target = cloudModel(model);
        if (target?.provider.name !== "openai") {
          throw apiError(400, `'${model}' does not take Responses requests as they are.`, "unsupported_model");
        }
        const cfg = this.configured(target.provider, model);
        const body = nativeBody(request, "openai", target.model);
        const meta = { id: "", model, created: Math.floor(Date.now() / 1000) };
        return callProvider(
          openaiResponses,
          cfg,
          body as unknown as OpenAIChatRequest,
          meta,
          this.callOptions("openai", signal, traceparent),
        );
      },
    },
    /** `<provider>:<model>` for every configured provider. */
    models: {
      visibility: "public",
      handler(this: This) {
        return cloudModelNames(this.settings.clouds);
      },
    },
  },

  methods: {
    /** The provider's key and base URL; a 400 naming the variable to set when it has none. */
    configured(this: This, provider: Provider, model: string): ProviderConfig {
      const cfg = providerConfig(provider, this.settings.clouds);
      if (cfg) return cfg;
      throw apiError(
        400,
        `The ${provider.name} provider is not configured: set ${this.settings.clouds[provider.name]?.keyVar ?? "its key"} on the router to use '${model}'.`,
        "provider_not_configured",
        { param: "model" },
      );
    },

    /** One call's limits, and its metrics. */
    callOptions(this: This, provider: string, signal: AbortSignal | undefined, traceparent?: string): CallOptions {
      const metrics = this.broker.metrics;
      const metered = metrics.isEnabled() && metrics.hasMetric(M.cloudRequests);
      return {
        timeoutMs: this.settings.router.requestTimeoutSecs * 1000,
        signal: signal ?? new AbortController().signal,
        traceparent,
        onAttempt: (status, ms) => {
          if (!metered) return;
          metrics.increment(M.cloudRequests, { provider, status: status ? String(status) : "error" });
          metrics.observe(M.cloudLatency, ms / 1000, { provider });
        },
      };
    },
  },

  /** Configuration is read here, when the service is created, not when this file is imported. */
  created(this: This) {
    this.settings = { ...this.settings, router: routerConfig(), clouds: cloudConfig() };
  },
};

export default CloudService;
