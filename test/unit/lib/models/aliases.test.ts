import {
  checkAlias,
  checkAliasName,
  checkAliasRemoval,
  checkFallbacks,
  MAX_ALIAS_DEPTH,
  MAX_CHAIN,
  RouteTable,
  type AliasDoc,
  type ModelCheck,
} from "../../../../lib/models/aliases";
import { toOpenAIError } from "../../../../lib/openai/errors";

const REAL = new Set(["llama", "qwen", "mistral", "phi", "gemma", "hf/org/repo/file"]);
const ctx: ModelCheck = {
  isRealModel: (n) => REAL.has(n),
  // only OpenAI is configured
  isCloudModel: (n) => n.startsWith("openai:") && n.length > 7,
};

const alias = (name: string, model: string, fallbacks: string[] = []): AliasDoc => ({
  alias: name,
  model,
  fallbacks,
  createdAt: "2026-01-01T00:00:00.000Z",
});

/** The status, code, param and message of what `fn` throws. */
function refusal(fn: () => void) {
  try {
    fn();
  } catch (err) {
    const { status, body } = toOpenAIError(err);
    return { status, code: body.error.code, param: body.error.param, message: body.error.message };
  }
  throw new Error("expected a refusal");
}

describe("chain", () => {
  test("a name nothing is set for is itself", () => {
    const t = new RouteTable([alias("fast", "qwen")]);
    expect(t.chain("llama")).toEqual(["llama"]);
    expect(new RouteTable().chain("openai:gpt-4o")).toEqual(["openai:gpt-4o"]);
  });

  test("an alias leads to its model, through other aliases, then its fallbacks", () => {
    const t = new RouteTable([alias("fast", "qwen", ["phi"]), alias("quick", "fast", ["gemma"])]);
    expect(t.chain("fast")).toEqual(["qwen", "phi"]);
    // the alias asked for first, then those on the way
    expect(t.chain("quick")).toEqual(["qwen", "gemma", "phi"]);
    expect(t.resolve("quick")).toBe("qwen");
  });

  test("then the fallbacks of the model it leads to; each fallback followed through aliases, no model twice", () => {
    const t = new RouteTable(
      [alias("fast", "qwen", ["cheap", "llama"]), alias("cheap", "openai:gpt-4o-mini")],
      [
        { model: "qwen", fallbacks: ["llama", "mistral", "fast"] },
        { model: "llama", fallbacks: ["gemma"] },
      ],
    );
    expect(t.chain("fast")).toEqual(["qwen", "openai:gpt-4o-mini", "llama", "mistral"]);
    // a real model's own fallbacks, not those of its fallbacks
    expect(t.chain("qwen")).toEqual(["qwen", "llama", "mistral"]);
    expect(t.chain("llama")).toEqual(["llama", "gemma"]);
  });

  test("at most MAX_CHAIN models", () => {
    const many = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const t = new RouteTable([alias("a", "m0", many.slice(1, 8))], [{ model: "m0", fallbacks: many.slice(8) }]);
    expect(t.chain("a")).toEqual(many.slice(0, MAX_CHAIN));
  });

  test("a loop (never stored, but bounded anyway) ends", () => {
    const t = new RouteTable([alias("a", "b"), alias("b", "a")]);
    expect(t.follow("a")).toEqual({ path: ["a", "b"], model: null, loop: true });
    expect(t.chain("a")).toEqual(["a"]);
  });

  test("aliasesOf, list, and an empty fallback list counts as none", () => {
    const t = new RouteTable(
      [alias("z", "qwen"), alias("b", "z"), alias("c", "llama")],
      [
        { model: "qwen", fallbacks: [] },
        { model: "phi", fallbacks: ["llama"] },
      ],
    );
    expect(t.aliasesOf("qwen")).toEqual(["b", "z"]);
    expect(t.aliasesOf("mistral")).toEqual([]);
    expect(t.list().aliases.map((a) => a.alias)).toEqual(["b", "c", "z"]);
    expect(t.list().fallbacks).toEqual([{ model: "phi", fallbacks: ["llama"] }]);
    expect(t.chain("qwen")).toEqual(["qwen"]);
  });
});

describe("alias checks", () => {
  const t = new RouteTable([alias("fast", "qwen"), alias("quick", "fast")], [{ model: "llama", fallbacks: ["fast"] }]);
  const set = (name: string, model: string, fallbacks: string[] = [], table = t) =>
    refusal(() => checkAlias(table, { alias: name, model, fallbacks }, ctx));

  test("good aliases pass: to a real model, a cloud model, another alias; replacing one", () => {
    expect(() =>
      checkAlias(t, { alias: "smart", model: "llama", fallbacks: ["fast", "openai:gpt-4o"] }, ctx),
    ).not.toThrow();
    expect(() => checkAlias(t, { alias: "gpt", model: "openai:gpt-4o", fallbacks: [] }, ctx)).not.toThrow();
    expect(() =>
      checkAlias(t, { alias: "fastest", model: "quick", fallbacks: ["hf/org/repo/file"] }, ctx),
    ).not.toThrow();
    expect(() => checkAlias(t, { alias: "fast", model: "mistral", fallbacks: ["qwen"] }, ctx)).not.toThrow();
  });

  test("a bad name: 422 invalid_alias", () => {
    for (const name of [
      "",
      "has space",
      "tab\there",
      "nl\n",
      "zero\u200bwidth",
      "x".repeat(257),
      "openai:x",
      "OpenAI:",
      "google:gemini",
    ]) {
      expect({ name, ...set(name, "qwen") }).toMatchObject({
        name,
        status: 422,
        code: "invalid_alias",
        param: "alias",
      });
    }
    expect(refusal(() => checkAliasName(42))).toMatchObject({ status: 422, code: "invalid_alias" });
    // a colon is fine when it is no provider's prefix
    expect(() => checkAliasName("team:fast")).not.toThrow();
    expect(() => checkAliasName("x".repeat(256))).not.toThrow();
  });

  test("a real model's id: 409 alias_shadows_model", () => {
    expect(set("llama", "qwen")).toMatchObject({ status: 409, code: "alias_shadows_model", param: "alias" });
  });

  test("an unknown target: 422 model_not_found, naming it", () => {
    const r = set("smart", "nope");
    expect(r).toMatchObject({ status: 422, code: "model_not_found", param: "model" });
    expect(r.message).toMatch(/'nope'/);
    // a cloud model of a provider that is not configured
    expect(set("smart", "anthropic:claude")).toMatchObject({ status: 422, code: "model_not_found" });
  });

  test("a loop: 409 alias_loop (to itself, or back through others)", () => {
    expect(set("fast", "fast")).toMatchObject({ status: 409, code: "alias_loop", param: "model" });
    expect(set("new", "new")).toMatchObject({ status: 409, code: "alias_loop", param: "model" });
    const r = set("fast", "quick");
    expect(r).toMatchObject({ status: 409, code: "alias_loop", param: "model" });
    expect(r.message).toMatch(/fast → quick → fast/);
  });

  test("more than MAX_ALIAS_DEPTH aliases in a row: 422 alias_too_deep", () => {
    const deep = new RouteTable(
      Array.from({ length: MAX_ALIAS_DEPTH }, (_, i) => alias(`a${i}`, i === 0 ? "qwen" : `a${i - 1}`)),
    );
    expect(() =>
      checkAlias(deep, { alias: "top", model: `a${MAX_ALIAS_DEPTH - 2}`, fallbacks: [] }, ctx),
    ).not.toThrow();
    expect(set("top", `a${MAX_ALIAS_DEPTH - 1}`, [], deep)).toMatchObject({ status: 422, code: "alias_too_deep" });
  });

  test("an unknown fallback: 422 model_not_found on fallbacks", () => {
    expect(set("smart", "llama", ["qwen", "nope"])).toMatchObject({
      status: 422,
      code: "model_not_found",
      param: "fallbacks",
    });
  });

  test("a fallback that is the alias, its model, or leads back to it: 409 fallback_loop", () => {
    for (const f of ["smart", "llama"]) {
      expect({ f, ...set("smart", "llama", [f]) }).toMatchObject({
        f,
        status: 409,
        code: "fallback_loop",
        param: "fallbacks",
      });
    }
    // quick → fast → qwen: the model `smart` leads to
    expect(set("smart", "fast", ["quick"])).toMatchObject({ status: 409, code: "fallback_loop", param: "fallbacks" });
    expect(set("smart", "qwen", ["fast"])).toMatchObject({ status: 409, code: "fallback_loop" });
  });

  test("a change that makes another setting's fallback lead back: 409 fallback_loop", () => {
    // llama falls back to `fast`; pointing `fast` at llama would make that a loop
    const r = set("fast", "llama");
    expect(r).toMatchObject({ status: 409, code: "fallback_loop" });
    expect(r.message).toMatch(/'fast' of 'llama'/);
  });

  test("too many or repeated fallbacks: 422", () => {
    const nine = [
      "qwen",
      "mistral",
      "phi",
      "gemma",
      "hf/org/repo/file",
      "openai:a",
      "openai:b",
      "openai:c",
      "openai:d",
    ];
    expect(set("smart", "llama", nine)).toMatchObject({ status: 422, code: "too_many_fallbacks", param: "fallbacks" });
    expect(() => checkAlias(t, { alias: "smart", model: "llama", fallbacks: nine.slice(0, 8) }, ctx)).not.toThrow();
    expect(set("smart", "llama", ["qwen", "qwen"])).toMatchObject({
      status: 422,
      code: "duplicate_fallback",
      param: "fallbacks",
    });
  });
});

describe("fallback checks", () => {
  const t = new RouteTable([alias("fast", "qwen"), alias("back", "llama")]);
  const set = (model: string, fallbacks: string[]) => refusal(() => checkFallbacks(t, { model, fallbacks }, ctx));

  test("a real model's fallbacks: real, cloud or aliases", () => {
    expect(() =>
      checkFallbacks(t, { model: "llama", fallbacks: ["fast", "openai:gpt-4o", "mistral"] }, ctx),
    ).not.toThrow();
    // an empty list removes them: nothing to check beyond the model
    expect(() => checkFallbacks(t, { model: "llama", fallbacks: [] }, ctx)).not.toThrow();
  });

  test("the model must be real (not an alias, not unknown): 422 model_not_found on model", () => {
    expect(set("nope", ["qwen"])).toMatchObject({ status: 422, code: "model_not_found", param: "model" });
    const r = set("fast", ["llama"]);
    expect(r).toMatchObject({ status: 422, code: "model_not_found", param: "model" });
    expect(r.message).toMatch(/is an alias/);
  });

  test("unknown fallbacks: 422; ones that lead back to the model: 409 fallback_loop; too many: 422", () => {
    expect(set("llama", ["nope"])).toMatchObject({ status: 422, code: "model_not_found", param: "fallbacks" });
    expect(set("llama", ["llama"])).toMatchObject({ status: 409, code: "fallback_loop", param: "fallbacks" });
    expect(set("llama", ["qwen", "back"])).toMatchObject({ status: 409, code: "fallback_loop", param: "fallbacks" });
    expect(
      set(
        "llama",
        Array.from({ length: 9 }, (_, i) => `openai:m${i}`),
      ),
    ).toMatchObject({
      status: 422,
      code: "too_many_fallbacks",
    });
  });
});

describe("alias removal", () => {
  const t = new RouteTable(
    [alias("fast", "qwen"), alias("quick", "fast"), alias("smart", "llama", ["cheap"]), alias("cheap", "phi")],
    [{ model: "mistral", fallbacks: ["cheap"] }],
  );

  test("an unknown alias: 404 alias_not_found", () => {
    expect(refusal(() => checkAliasRemoval(t, "nope"))).toMatchObject({
      status: 404,
      code: "alias_not_found",
      param: "alias",
    });
  });

  test("one other settings name: 409 alias_in_use, naming them; one nothing names goes", () => {
    expect(refusal(() => checkAliasRemoval(t, "fast"))).toMatchObject({ status: 409, code: "alias_in_use" });
    expect(refusal(() => checkAliasRemoval(t, "cheap")).message).toMatch(/'mistral', 'smart'/);
    expect(() => checkAliasRemoval(t, "quick")).not.toThrow();
  });
});
