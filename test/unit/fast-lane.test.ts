/** Which routes the api's fast lane serves itself (the rest go to moleculer-web). */
import { fastRoutes } from "../../services/api/fast-lane";
import { inferenceAliases } from "../../services/api/inference-routes";

test("the inference routes that take an API key, by full path; the playground (a login) is left to moleculer-web", () => {
  expect([...fastRoutes(inferenceAliases).keys()].sort()).toEqual([
    "/api/chat",
    "/api/generate",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/messages",
  ]);
});

test("only POST aliases, and only routes the route table opens to API keys", () => {
  const noop = () => undefined;
  const routes = fastRoutes({
    "/v1": { "GET /models": noop, "POST /chat/completions": noop, "POST /not-in-the-table": noop },
    "/api": { "POST /nodes": noop },
  });
  expect([...routes.keys()]).toEqual(["/v1/chat/completions"]);
});
