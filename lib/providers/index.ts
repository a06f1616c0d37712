/**
 * Which cloud a model name goes to: `openai:`, `google:`, `anthropic:` (and
 * the seed's typo `ahtnorpic:`), the provider's key and base URL from its
 * configuration (cloudConfig() in lib/config), and the cloud models
 * /v1/models lists.
 */
import type { CloudConfig } from "../config";
import { anthropic } from "./anthropic";
import { google } from "./google";
import { openai } from "./openai";
import type { Provider, ProviderConfig } from "./types";

export const PROVIDERS: Record<string, Provider> = { openai, google, anthropic };
const ALIASES: Record<string, string> = { ahtnorpic: "anthropic" };

export interface CloudModel {
  provider: Provider;
  /** The model name at the provider (prefix stripped). */
  model: string;
}

/** The provider and model of `openai:gpt-4o`, or null for a local model name. */
export function cloudModel(name: string): CloudModel | null {
  const i = name.indexOf(":");
  if (i <= 0) return null;
  const prefix = name.slice(0, i).toLowerCase();
  const provider = PROVIDERS[ALIASES[prefix] ?? prefix];
  const model = name.slice(i + 1);
  return provider && model ? { provider, model } : null;
}

/** The provider's key and base URL, or null when its key is not set. `clouds`: cloudConfig(). */
export function providerConfig(p: Provider, clouds: Record<string, CloudConfig>): ProviderConfig | null {
  const c = clouds[p.name];
  if (!c?.apiKey) return null;
  return { apiKey: c.apiKey, baseUrl: c.baseUrl };
}

/** `<provider>:<model>` for every configured provider: `<NAME>_MODELS` or its default list. */
export function cloudModelNames(clouds: Record<string, CloudConfig>): string[] {
  const names: string[] = [];
  for (const p of Object.values(PROVIDERS)) {
    if (!providerConfig(p, clouds)) continue;
    for (const m of clouds[p.name].models) names.push(`${p.name}:${m}`);
  }
  return names;
}
