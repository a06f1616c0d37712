/**
 * Model aliases and fallback chains, as pure logic (services/aliases.service.ts
 * stores them). An alias is a name clients may ask for instead of a model
 * (`fast` → `qwen2.5-0.5b`); it may point to another alias, and may carry
 * fallbacks of its own. A real model may have fallbacks too. `chain()` turns
 * what a client asked for into the models to try, in order; the checks here
 * refuse what would make a chain ambiguous or endless (each throws an
 * OpenAI-shaped error naming the problem).
 */
import type { ModelRoutes } from "../core/router-core";
import { apiError } from "../openai/errors";
import { cloudModel } from "../providers";

export interface AliasDoc {
  alias: string;
  /** A model (local, runtime or cloud) or another alias. */
  model: string;
  fallbacks: string[];
  createdAt: string;
}

/** Fallbacks set for a real model. */
export interface FallbackDoc {
  model: string;
  fallbacks: string[];
}

/** What the checks ask of the cluster. */
export interface ModelCheck {
  /** Some node or runtime reports it, loaded or on disk. */
  isRealModel(name: string): boolean;
  /** A cloud-prefixed name whose provider is configured. */
  isCloudModel(name: string): boolean;
}

/** At most this many models in a chain (the model asked for included). */
export const MAX_CHAIN = 8;
/** At most this many fallbacks on one alias or model. */
export const MAX_FALLBACKS = 8;
/** At most this many aliases in a row (an alias to an alias to …). */
export const MAX_ALIAS_DEPTH = 8;
export const MAX_ALIAS_LENGTH = 256;

/** Where following a name through aliases leads. */
export interface Followed {
  /** The aliases met, in order (the name itself first when it is one). */
  path: string[];
  /** The name that is no alias at the end, or null when the aliases loop or go deeper than MAX_ALIAS_DEPTH. */
  model: string | null;
  loop: boolean;
}

export class RouteTable implements ModelRoutes {
  private readonly aliases: Map<string, AliasDoc>;
  private readonly fallbacks: Map<string, FallbackDoc>;

  constructor(aliases: readonly AliasDoc[] = [], fallbacks: readonly FallbackDoc[] = []) {
    this.aliases = new Map(aliases.map((a) => [a.alias, a]));
    this.fallbacks = new Map(fallbacks.filter((f) => f.fallbacks.length > 0).map((f) => [f.model, f]));
  }

  isAlias(name: string): boolean {
    return this.aliases.has(name);
  }

  alias(name: string): AliasDoc | undefined {
    return this.aliases.get(name);
  }

  fallbacksOf(model: string): FallbackDoc | undefined {
    return this.fallbacks.get(model);
  }

  /** Follows `name` through aliases, never further than MAX_ALIAS_DEPTH. */
  follow(name: string): Followed {
    const path: string[] = [];
    let at = name;
    for (let doc = this.aliases.get(at); doc; doc = this.aliases.get(at)) {
      if (path.includes(at)) return { path, model: null, loop: true };
      if (path.length >= MAX_ALIAS_DEPTH) return { path, model: null, loop: false };
      path.push(at);
      at = doc.model;
    }
    return { path, model: at, loop: false };
  }

  /** The model an alias leads to; `name` itself when it is no alias (or a broken one). */
  resolve(name: string): string {
    return this.follow(name).model ?? name;
  }

  /**
   * The models to try for `requested`: the model it leads to, then the
   * fallbacks of each alias on the way (the one asked for first), then those
   * set for that model; each fallback followed through aliases, no model
   * twice, at most MAX_CHAIN. `[requested]` when nothing is set for it.
   */
  chain(requested: string): string[] {
    if (!this.aliases.has(requested) && !this.fallbacks.has(requested)) return [requested];
    const { path, model } = this.follow(requested);
    const first = model ?? requested;
    const out = [first];
    const add = (names: readonly string[]) => {
      for (const f of names) {
        const m = this.follow(f).model;
        if (m !== null && out.length < MAX_CHAIN && !out.includes(m)) out.push(m);
      }
    };
    for (const a of path) add(this.aliases.get(a)!.fallbacks);
    add(this.fallbacks.get(first)?.fallbacks ?? []);
    return out;
  }

  /** The aliases that lead to `model` (directly or through other aliases), sorted. */
  aliasesOf(model: string): string[] {
    return [...this.aliases.keys()].filter((a) => this.follow(a).model === model).sort();
  }

  /** Everything set, sorted by name. */
  list(): { aliases: AliasDoc[]; fallbacks: FallbackDoc[] } {
    return {
      aliases: [...this.aliases.values()].sort((a, b) => a.alias.localeCompare(b.alias)),
      fallbacks: [...this.fallbacks.values()].sort((a, b) => a.model.localeCompare(b.model)),
    };
  }

  /** This table with `doc` set (an alias of its name replaced). */
  withAlias(doc: AliasDoc): RouteTable {
    const { aliases, fallbacks } = this.list();
    return new RouteTable([...aliases.filter((a) => a.alias !== doc.alias), doc], fallbacks);
  }

  /** This table with `doc` set (an empty list removes the model's fallbacks). */
  withFallbacks(doc: FallbackDoc): RouteTable {
    const { aliases, fallbacks } = this.list();
    return new RouteTable(aliases, [...fallbacks.filter((f) => f.model !== doc.model), doc]);
  }

  /** The aliases and models whose settings name `name` (as target or fallback). */
  usersOf(name: string): string[] {
    const users = [...this.aliases.values()]
      .filter((a) => a.alias !== name && (a.model === name || a.fallbacks.includes(name)))
      .map((a) => a.alias);
    for (const f of this.fallbacks.values()) if (f.fallbacks.includes(name)) users.push(f.model);
    return users.sort();
  }
}

// ---- checks ---------------------------------------------------------------------

const CONTROL_OR_SPACE = /[\s\p{Cc}\p{Cf}]/u;

/** Whether `name` starts with a cloud provider's prefix (`openai:`, even with nothing after it). */
function cloudPrefixed(name: string): boolean {
  return cloudModel(name.endsWith(":") ? `${name}x` : name) !== null;
}

const quoted = (names: string[]) => names.map((n) => `'${n}'`).join(", ");

/** A well-formed alias name, or 422 `invalid_alias`. */
export function checkAliasName(alias: unknown): asserts alias is string {
  const bad = (why: string) => apiError(422, `The alias ${why}.`, "invalid_alias", { param: "alias" });
  if (typeof alias !== "string" || alias.length === 0) throw bad("must be a non-empty string");
  if (alias.length > MAX_ALIAS_LENGTH) throw bad(`must be at most ${MAX_ALIAS_LENGTH} characters`);
  if (CONTROL_OR_SPACE.test(alias)) throw bad(`'${alias}' must not hold whitespace or control characters`);
  if (cloudPrefixed(alias)) throw bad(`'${alias}' must not start with a cloud provider's prefix`);
}

/** Whether `name` is something a chain can lead to: a real model, a configured cloud model or an alias. */
const known = (name: string, table: RouteTable, ctx: ModelCheck) =>
  ctx.isRealModel(name) || ctx.isCloudModel(name) || table.isAlias(name);

/**
 * A list of fallbacks for `owner` (an alias or a model) in `table` (with the
 * change applied), all of which must lead somewhere other than `target`.
 */
function checkFallbackList(
  table: RouteTable,
  owner: string,
  target: string,
  fallbacks: readonly string[],
  ctx: ModelCheck,
): void {
  if (fallbacks.length > MAX_FALLBACKS) {
    throw apiError(422, `At most ${MAX_FALLBACKS} fallbacks (${fallbacks.length} given).`, "too_many_fallbacks", {
      param: "fallbacks",
    });
  }
  const loop = (why: string) => apiError(409, why, "fallback_loop", { param: "fallbacks" });
  for (const [i, f] of fallbacks.entries()) {
    if (fallbacks.indexOf(f) !== i) {
      throw apiError(422, `The fallback '${f}' is listed twice.`, "duplicate_fallback", { param: "fallbacks" });
    }
    if (f === owner) throw loop(`'${owner}' cannot be a fallback of itself.`);
    const led = table.follow(f);
    if (led.model === null) throw loop(`The fallback '${f}' leads into a loop or too deep (${led.path.join(" → ")}).`);
    if (led.model === target) {
      throw loop(
        f === target
          ? `The fallback '${f}' is the model '${owner}' leads to.`
          : `The fallback '${f}' leads back to '${target}', the model '${owner}' leads to.`,
      );
    }
    if (!known(f, table, ctx)) {
      throw apiError(
        422,
        `The fallback '${f}' is no model, cloud model or alias the router knows.`,
        "model_not_found",
        {
          param: "fallbacks",
        },
      );
    }
  }
}

/** Checks setting (or replacing) an alias in `table`; throws the refusal. */
export function checkAlias(
  table: RouteTable,
  entry: { alias: string; model: string; fallbacks: readonly string[] },
  ctx: ModelCheck,
): void {
  const { alias, model, fallbacks } = entry;
  checkAliasName(alias);
  if (ctx.isRealModel(alias)) {
    throw apiError(409, `'${alias}' is a model's id: an alias of that name would hide it.`, "alias_shadows_model", {
      param: "alias",
    });
  }
  const loop = (why: string) => apiError(409, why, "alias_loop", { param: "model" });
  if (model === alias) throw loop(`The alias '${alias}' cannot point to itself.`);
  const next = table.withAlias({ alias, model, fallbacks: [...fallbacks], createdAt: "" });
  if (!known(model, next, ctx)) {
    throw apiError(422, `'${model}' is no model, cloud model or alias the router knows.`, "model_not_found", {
      param: "model",
    });
  }
  const led = next.follow(alias);
  if (led.loop) throw loop(`The alias '${alias}' would loop: ${[...led.path, alias].join(" → ")}.`);
  if (led.model === null) {
    throw apiError(
      422,
      `The alias '${alias}' would go more than ${MAX_ALIAS_DEPTH} aliases deep (${led.path.join(" → ")} → …).`,
      "alias_too_deep",
      { param: "model" },
    );
  }
  checkFallbackList(next, alias, led.model, fallbacks, ctx);
  // the change leads other settings through this alias: each must still end, and not in its own fallbacks
  sweep(next);
}

/** Refuses a table where some alias goes too deep, or a fallback leads back to what its alias or model leads to. */
function sweep(table: RouteTable): void {
  const { aliases, fallbacks } = table.list();
  const owners = [
    ...aliases.map((a) => ({ owner: a.alias, target: table.follow(a.alias).model, fallbacks: a.fallbacks })),
    ...fallbacks.map((d) => ({ owner: d.model, target: d.model as string | null, fallbacks: d.fallbacks })),
  ];
  for (const { owner, target, fallbacks: list } of owners) {
    if (target === null) {
      throw apiError(422, `That would take '${owner}' more than ${MAX_ALIAS_DEPTH} aliases deep.`, "alias_too_deep", {
        param: "model",
      });
    }
    const back = list.find((f) => table.follow(f).model === target);
    if (back !== undefined) {
      throw apiError(
        409,
        `That would make the fallback '${back}' of '${owner}' lead back to '${target}'.`,
        "fallback_loop",
        {
          param: "model",
        },
      );
    }
  }
}

/** Checks setting fallbacks for a real model in `table` (an empty list, which removes them, always passes). */
export function checkFallbacks(table: RouteTable, entry: FallbackDoc, ctx: ModelCheck): void {
  const { model, fallbacks } = entry;
  const notFound = (why: string) => apiError(422, why, "model_not_found", { param: "model" });
  if (table.isAlias(model)) {
    throw notFound(`'${model}' is an alias: set its fallbacks with the alias (POST /api/aliases).`);
  }
  if (!ctx.isRealModel(model)) throw notFound(`'${model}' is no model a node or runtime reports.`);
  if (fallbacks.length === 0) return;
  checkFallbackList(table.withFallbacks(entry), model, model, fallbacks, ctx);
}

/** Checks removing an alias: 404 when there is none, 409 while another alias or a model's fallbacks name it. */
export function checkAliasRemoval(table: RouteTable, alias: string): void {
  if (!table.isAlias(alias)) {
    throw apiError(404, `No alias '${alias}'.`, "alias_not_found", { param: "alias" });
  }
  const users = table.usersOf(alias);
  if (users.length) {
    throw apiError(
      409,
      `The alias '${alias}' is named by ${quoted(users)}: change ${users.length > 1 ? "those" : "that"} first.`,
      "alias_in_use",
      { param: "alias" },
    );
  }
}
