import { ROUTES } from "../../../../lib/auth/routes";
import { parseScopes, SCOPE_NAMES, scopeAllows } from "../../../../lib/auth/scopes";
import { toOpenAIError } from "../../../../lib/openai/errors";

/** The OpenAI error parseScopes refuses with (fails when it accepts). */
function refusal(raw: unknown) {
  try {
    parseScopes(raw);
  } catch (e) {
    return toOpenAIError(e);
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

const keyRoutes = ROUTES.filter((r) => r.access === "apiKey" || (r.access === "user" && r.method === "GET"));
const neverKey = ROUTES.filter((r) => !keyRoutes.includes(r));

describe("parseScopes", () => {
  test("null: inference, as keys always had", () => {
    expect(parseScopes(null)).toBeNull();
  });

  test("takes scope names, and the routes (method and path, or path) a key may use", () => {
    expect(SCOPE_NAMES).toEqual(["inference", "read"]);
    expect(parseScopes(["inference"])).toEqual(["inference"]);
    expect(parseScopes(["read", "inference"])).toEqual(["read", "inference"]);
    expect(parseScopes(["POST /v1/embeddings", "/v1/models", "GET /api/usage"])).toEqual([
      "POST /v1/embeddings",
      "/v1/models",
      "GET /api/usage",
    ]);
    expect(parseScopes(["/api/nodes/:id"])).toEqual(["/api/nodes/:id"]);
    // duplicates once
    expect(parseScopes(["read", "read", "/v1/models", "/v1/models"])).toEqual(["read", "/v1/models"]);
    // every route a key may be given, by method and path and by path
    for (const r of keyRoutes) {
      expect(parseScopes([`${r.method} ${r.path}`])).toEqual([`${r.method} ${r.path}`]);
      expect(parseScopes([r.path])).toEqual([r.path]);
    }
  });

  test("refuses admin routes, management changes, other access, unknown strings: a 400 whose param is scopes", () => {
    const bad = [
      "POST /api/users",
      "/api/users",
      "GET /api/users",
      "DELETE /api/users/:id",
      "PUT /api/api-keys/:id",
      "POST /api/api-keys", // a login's, never a key's
      "DELETE /api/api-keys/:id",
      "POST /api/auth/password",
      "POST /api/playground/chat",
      "POST /api/models/:id/load",
      "GET /api/audit",
      "POST /api/health", // node tokens'
      "GET /metrics",
      "GET /health",
      "admin",
      "write",
      "Inference",
      "",
      " inference",
      "POST  /v1/embeddings",
      "post /v1/embeddings",
      "GET /v1/embeddings", // the path is a key's, this method is not in the table
      "/v1/embeddings/",
      "/v1/nope",
      "__proto__",
      "toString",
    ];
    for (const s of bad) {
      const err = refusal([s]);
      expect(err.status).toBe(400);
      expect(err.body.error.param).toBe("scopes");
      expect(err.body.error.code).toBe("invalid_value");
    }
    // one bad entry among good ones refuses the list, naming it
    expect(refusal(["inference", "POST /api/users"]).body.error.message).toContain("'POST /api/users'");
    for (const r of neverKey) {
      expect(refusal([`${r.method} ${r.path}`]).status).toBe(400);
    }
  });

  test("refuses an empty list, too long a list, non-strings and non-lists", () => {
    const many = Array.from({ length: 101 }, () => "inference");
    for (const raw of [[], many, "inference", undefined, 5, {}, { 0: "read" }, true, [null], [1], [["read"]], [{}]]) {
      const err = refusal(raw);
      expect(err.status).toBe(400);
      expect(err.body.error.param).toBe("scopes");
    }
    expect(parseScopes(many.slice(1))).toEqual(["inference"]); // 100 entries are fine
  });

  test("a long unknown entry is not echoed whole", () => {
    const long = `x${"y".repeat(5000)}`;
    expect(refusal([long]).body.error.message.length).toBeLessThan(400);
  });
});

describe("scopeAllows", () => {
  test("no scopes (null or undefined): every inference route, nothing else", () => {
    for (const scopes of [null, undefined]) {
      for (const r of ROUTES) {
        expect(scopeAllows(scopes, r.method, r.path, r.access)).toBe(r.access === "apiKey");
      }
    }
  });

  test('"inference": the inference routes only', () => {
    for (const r of ROUTES) expect(scopeAllows(["inference"], r.method, r.path, r.access)).toBe(r.access === "apiKey");
  });

  test('"read": the GET routes of any login, and no inference', () => {
    for (const r of ROUTES) {
      expect(scopeAllows(["read"], r.method, r.path, r.access)).toBe(r.access === "user" && r.method === "GET");
    }
    expect(scopeAllows(["read"], "GET", "/api/usage", "user")).toBe(true);
    expect(scopeAllows(["read"], "POST", "/api/playground/chat", "user")).toBe(false);
    expect(scopeAllows(["read"], "POST", "/v1/chat/completions", "apiKey")).toBe(false);
    expect(scopeAllows(["read", "inference"], "POST", "/v1/chat/completions", "apiKey")).toBe(true);
  });

  test("named routes: a method and path allows that one, a path every method of it a key may use", () => {
    const scopes = ["POST /v1/embeddings", "/v1/models/*id", "GET /api/nodes"];
    expect(scopeAllows(scopes, "POST", "/v1/embeddings", "apiKey")).toBe(true);
    expect(scopeAllows(scopes, "POST", "/v1/chat/completions", "apiKey")).toBe(false);
    expect(scopeAllows(scopes, "GET", "/v1/models/*id", "apiKey")).toBe(true);
    expect(scopeAllows(scopes, "GET", "/v1/models", "apiKey")).toBe(false);
    expect(scopeAllows(scopes, "GET", "/api/nodes", "user")).toBe(true);
    expect(scopeAllows(scopes, "GET", "/api/agents", "user")).toBe(false);
    // a path for every method: the responses routes of one id
    const responses = ["/v1/responses/:id"];
    expect(scopeAllows(responses, "GET", "/v1/responses/:id", "apiKey")).toBe(true);
    expect(scopeAllows(responses, "DELETE", "/v1/responses/:id", "apiKey")).toBe(true);
    expect(scopeAllows(responses, "POST", "/v1/responses", "apiKey")).toBe(false);
  });

  test("never an admin route, nor a change to management state, whatever the scopes", () => {
    const everything = ["inference", "read", ...ROUTES.flatMap((r) => [`${r.method} ${r.path}`, r.path])];
    for (const r of neverKey) expect(scopeAllows(everything, r.method, r.path, r.access)).toBe(false);
    // a path named for its GET does not open its other methods
    expect(scopeAllows(["/api/nodes/:id"], "GET", "/api/nodes/:id", "user")).toBe(true);
    expect(scopeAllows(["/api/nodes/:id"], "DELETE", "/api/nodes/:id", "admin")).toBe(false);
    expect(scopeAllows(["/api/api-keys"], "POST", "/api/api-keys", "user")).toBe(false);
    expect(scopeAllows(["DELETE /api/api-keys/:id"], "DELETE", "/api/api-keys/:id", "user")).toBe(false);
  });

  test("an empty list allows nothing", () => {
    for (const r of ROUTES) expect(scopeAllows([], r.method, r.path, r.access)).toBe(false);
  });
});
