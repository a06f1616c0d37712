/** The api's one handler table (services/api/routes.ts): every row of the route table, and what the fast lane serves. */
import { accessFor, ROUTES } from "../../../lib/auth/routes";
import { fastRoutes, ROUTE_HANDLERS } from "../../../services/api/routes";

test("every row of the route table has its handler, and every handler its row", () => {
  expect([...ROUTE_HANDLERS.keys()].sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
});

test("the fast lane serves the inference routes that take an API key, by full path; the playground (a login) is left to moleculer-web", () => {
  expect([...fastRoutes().keys()].sort()).toEqual([
    "/api/chat",
    "/api/generate",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/rerank",
    "/v1/responses",
  ]);
  for (const path of fastRoutes().keys()) expect(accessFor("POST", path)).toBe("apiKey");
  expect(fastRoutes().has("/api/nodes")).toBe(false);
  expect(fastRoutes().has("/v1/models")).toBe(false);
});
