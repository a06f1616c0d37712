/**
 * Model aliases and fallback chains through the management API of a real
 * router (one process with an instant-engine node, so no model is loaded):
 * create, list, replace and delete, each refusal as HTTP answers it, the
 * settings kept across a restart, and the CLI's `alias add/list/rm`.
 */
import fs from "node:fs";
import path from "node:path";
import { routerClient, type RouterClient } from "../helpers/client";
import { cliAgainst, login, startRouter, tempDir, type Proc } from "../helpers/procs";
import { waitFor } from "../helpers/wait";

const models = tempDir("aliases-models");
fs.mkdirSync(path.join(models, "org"));
for (const id of ["base", "other", "org/deep"])
  fs.writeFileSync(path.join(models, `${id}.gguf`), "instant: never loaded");
const dataDir = tempDir("aliases-data");

let router: { proc: Proc; url: string };
let admin: RouterClient;

async function start() {
  router = await startRouter("router", {
    LLM_NODE_MODELS_DIR: models,
    LLM_NODE_ENGINE: "instant",
    LLM_ROUTER_DATA_DIR: dataDir,
    // a configured cloud (never called here); anthropic stays unconfigured
    OPENAI_API_KEY: "sk-test-never-used",
  });
  admin = routerClient(router.url, { token: await login(router.url) });
  await waitFor(async () => (await admin.nodes()).some((n) => n.models.includes("org/deep")), {
    timeoutMs: 30_000,
    what: "the node's models in the table",
  });
}

beforeAll(start, 60_000);

afterAll(async () => {
  await router?.proc.stop();
});

const post = (body: unknown) => admin.answer("POST", "/api/aliases", body);
const put = (model: string, body: unknown) => admin.answer("PUT", `/api/fallbacks/${encodeURIComponent(model)}`, body);
const del = (what: "aliases" | "fallbacks", name: string) =>
  admin.answer("DELETE", `/api/${what}/${encodeURIComponent(name)}`);
const list = async () => (await admin.json("GET", "/api/aliases")).body;

/** The status, code and param of an answer. */
const refusal = (r: { status: number; body: { error?: { code: string; param: string | null } } }) => ({
  status: r.status,
  code: r.body.error?.code,
  param: r.body.error?.param,
});

describe("aliases and fallbacks", () => {
  let createdAt: string;

  test("an alias is created (201), listed, and replaced (200, same creation time)", async () => {
    const made = await post({ alias: "fast", model: "base" });
    expect(made.status).toBe(201);
    expect(made.body).toEqual({ alias: "fast", model: "base", fallbacks: [], created_at: expect.any(String) });
    createdAt = made.body.created_at;
    expect(await list()).toEqual({ aliases: [made.body], fallbacks: [] });

    const replaced = await post({ alias: "fast", model: "other", fallbacks: ["openai:gpt-4o", "org/deep"] });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toEqual({
      alias: "fast",
      model: "other",
      fallbacks: ["openai:gpt-4o", "org/deep"],
      created_at: createdAt,
    });
    expect((await post({ alias: "quick", model: "fast" })).status).toBe(201);
  });

  test("fallbacks for a real model (URL-encoded id) are set, listed, and an empty list removes them", async () => {
    const set = await put("base", { fallbacks: ["quick", "openai:gpt-4o-mini"] });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ model: "base", fallbacks: ["quick", "openai:gpt-4o-mini"] });
    expect((await put("org/deep", { fallbacks: ["base"] })).status).toBe(200);
    const l = await list();
    expect(l.aliases.map((a: { alias: string }) => a.alias)).toEqual(["fast", "quick"]);
    expect(l.fallbacks).toEqual([
      { model: "base", fallbacks: ["quick", "openai:gpt-4o-mini"] },
      { model: "org/deep", fallbacks: ["base"] },
    ]);
    expect((await put("org/deep", { fallbacks: [] })).body).toEqual({ model: "org/deep", fallbacks: [] });
    expect((await list()).fallbacks.map((f: { model: string }) => f.model)).toEqual(["base"]);
  });

  test("refused aliases: bad names, shadowing, unknown targets, loops, bad fallbacks", async () => {
    const cases: Array<[unknown, { status: number; code: string; param: string }]> = [
      [
        { alias: "has space", model: "base" },
        { status: 422, code: "invalid_alias", param: "alias" },
      ],
      [
        { alias: "", model: "base" },
        { status: 422, code: "invalid_alias", param: "alias" },
      ],
      [
        { alias: "x".repeat(257), model: "base" },
        { status: 422, code: "invalid_alias", param: "alias" },
      ],
      [
        { alias: "openai:mine", model: "base" },
        { status: 422, code: "invalid_alias", param: "alias" },
      ],
      [
        { alias: "base", model: "other" },
        { status: 409, code: "alias_shadows_model", param: "alias" },
      ],
      [
        { alias: "new", model: "nope" },
        { status: 422, code: "model_not_found", param: "model" },
      ],
      [
        { alias: "new", model: "anthropic:claude" },
        { status: 422, code: "model_not_found", param: "model" },
      ],
      [
        { alias: "self", model: "self" },
        { status: 409, code: "alias_loop", param: "model" },
      ],
      [
        { alias: "fast", model: "quick" },
        { status: 409, code: "alias_loop", param: "model" },
      ],
      [
        { alias: "new", model: "base", fallbacks: ["nope"] },
        { status: 422, code: "model_not_found", param: "fallbacks" },
      ],
      [
        { alias: "new", model: "base", fallbacks: ["new"] },
        { status: 409, code: "fallback_loop", param: "fallbacks" },
      ],
      [
        { alias: "new", model: "base", fallbacks: ["base"] },
        { status: 409, code: "fallback_loop", param: "fallbacks" },
      ],
      [
        { alias: "new", model: "fast", fallbacks: ["quick"] },
        { status: 409, code: "fallback_loop", param: "fallbacks" },
      ],
      [
        { alias: "new", model: "base", fallbacks: Array.from({ length: 9 }, (_, i) => `openai:m${i}`) },
        { status: 422, code: "too_many_fallbacks", param: "fallbacks" },
      ],
      // bodies of the wrong shape: 400 naming the field
      [{ model: "base" }, { status: 400, code: "invalid_value", param: "alias" }],
      [{ alias: "new" }, { status: 400, code: "invalid_value", param: "model" }],
      [
        { alias: "new", model: 3 },
        { status: 400, code: "invalid_value", param: "model" },
      ],
      [
        { alias: "new", model: "base", fallbacks: "other" },
        { status: 400, code: "invalid_value", param: "fallbacks" },
      ],
    ];
    for (const [body, expected] of cases) {
      expect({ body, ...refusal(await post(body)) }).toEqual({ body, ...expected });
    }
    expect((await post([1, 2])).status).toBe(400);
    // nothing refused was stored
    expect((await list()).aliases.map((a: { alias: string }) => a.alias)).toEqual(["fast", "quick"]);
  });

  test("refused fallbacks and removals", async () => {
    const cases: Array<[string, unknown, { status: number; code: string; param: string }]> = [
      ["nope", { fallbacks: ["base"] }, { status: 422, code: "model_not_found", param: "model" }],
      ["fast", { fallbacks: ["base"] }, { status: 422, code: "model_not_found", param: "model" }],
      ["other", { fallbacks: ["nope"] }, { status: 422, code: "model_not_found", param: "fallbacks" }],
      // fast → other
      ["other", { fallbacks: ["fast"] }, { status: 409, code: "fallback_loop", param: "fallbacks" }],
      ["other", { fallbacks: ["other"] }, { status: 409, code: "fallback_loop", param: "fallbacks" }],
      ["other", {}, { status: 400, code: "invalid_value", param: "fallbacks" }],
      ["other", { fallbacks: [""] }, { status: 400, code: "invalid_value", param: "fallbacks[0]" }],
    ];
    for (const [model, body, expected] of cases) {
      expect({ model, body, ...refusal(await put(model, body)) }).toEqual({ model, body, ...expected });
    }
    expect(refusal(await del("aliases", "nope"))).toEqual({ status: 404, code: "alias_not_found", param: "alias" });
    // quick → fast, and base falls back to quick
    expect(refusal(await del("aliases", "fast"))).toEqual({ status: 409, code: "alias_in_use", param: "alias" });
    expect(refusal(await del("fallbacks", "other"))).toEqual({
      status: 404,
      code: "fallbacks_not_found",
      param: "model",
    });
  });

  test("settings outlive a restart", async () => {
    const before = await list();
    await router.proc.stop();
    await start();
    expect(await list()).toEqual(before);
  }, 60_000);

  test("fallbacks and aliases are deleted", async () => {
    expect((await del("fallbacks", "base")).body).toEqual({ deleted: true, model: "base" });
    expect((await del("aliases", "quick")).body).toEqual({ deleted: true, alias: "quick" });
    expect((await del("aliases", "fast")).status).toBe(200);
    expect(await list()).toEqual({ aliases: [], fallbacks: [] });
  });

  test("the CLI adds, lists and removes an alias", async () => {
    const add = await cliAgainst(router.url, "alias", "add", "cli-alias", "base", "--fallback", "org/deep");
    expect(add).toEqual({ code: 0, out: "alias cli-alias → base, then org/deep\n" });
    const listed = await cliAgainst(router.url, "alias", "list");
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/^cli-alias\t→ base\tfallbacks: org\/deep$/m);
    const bad = await cliAgainst(router.url, "alias", "add", "other-alias", "nope");
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/422 'nope' is no model/);
    expect(await cliAgainst(router.url, "alias", "rm", "cli-alias")).toEqual({
      code: 0,
      out: "removed alias cli-alias\n",
    });
    expect((await list()).aliases).toEqual([]);
  }, 60_000);
});
