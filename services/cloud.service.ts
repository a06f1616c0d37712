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
import { callProvider } from "../lib/providers/call";
import { cloudModel, cloudModelNames, providerConfig } from "../lib/providers/index";
import type { OpenAIChatCompletion, OpenAIChatRequest, ResponseMeta } from "../lib/providers/types";

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
}

type This = Service<Settings>;

const CloudService: ServiceSchema<Settings> = {
  name: "cloud",

  actions: {
    /** Local only: the api hands over the request object and gets a stream object back. */
    chat: {
      visibility: "public",
      async handler(this: This, ctx: Context<ChatParams>): Promise<OpenAIChatCompletion | Readable> {
        const { request, meta, signal } = ctx.params;
        const target = cloudModel(request.model);
        if (!target) throw apiError(404, `'${request.model}' is not a cloud model.`, "model_not_found");
        const { provider, model } = target;
        const cfg = providerConfig(provider, this.settings.clouds);
        if (!cfg) {
          throw apiError(
            400,
            `The ${provider.name} provider is not configured: set ${this.settings.clouds[provider.name]?.keyVar ?? "its key"} on the router to use '${request.model}'.`,
            "provider_not_configured",
            { param: "model" },
          );
        }
        const metrics = this.broker.metrics;
        const metered = metrics.isEnabled() && metrics.hasMetric(M.cloudRequests);
        return callProvider(provider, cfg, { ...request, model }, meta, {
          timeoutMs: this.settings.router.requestTimeoutSecs * 1000,
          signal: signal ?? new AbortController().signal,
          onAttempt: (status, ms) => {
            if (!metered) return;
            metrics.increment(M.cloudRequests, { provider: provider.name, status: status ? String(status) : "error" });
            metrics.observe(M.cloudLatency, ms / 1000, { provider: provider.name });
          },
        });
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

  /** Configuration is read here, when the service is created, not when this file is imported. */
  created(this: This) {
    this.settings = { ...this.settings, router: routerConfig(), clouds: cloudConfig() };
  },
};

export default CloudService;
