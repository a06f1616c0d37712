/**
 * What a runtime's registration accepts (lib/runtimes/runtime-url.ts), and
 * what it answers when the runtime's `/models` is not what it should be
 * (lib/runtimes/openai-upstream.ts, over real HTTP).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { toOpenAIError } from "../../../../lib/openai/errors";
import { probeModels } from "../../../../lib/runtimes/openai-upstream";
import {
  agentBaseUrl,
  parseApiKey,
  parseBaseUrl,
  parseEndpoints,
  parseHost,
  parseName,
  parsePort,
  suggestV1,
} from "../../../../lib/runtimes/runtime-url";

/** The OpenAI error `fn` throws (it must throw). */
function refusal(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    return toOpenAIError(err);
  }
  throw new Error("expected a throw");
}

async function rejection(p: Promise<unknown>) {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => toOpenAIError(err),
  );
}

describe("base_url", () => {
  test.each([
    ["http://gpu-box:8000/v1", "http://gpu-box:8000/v1"],
    ["http://gpu-box:8000/v1/", "http://gpu-box:8000/v1"],
    ["HTTPS://GPU-Box:443/v1//", "https://gpu-box/v1"],
    ["http://127.0.0.1:80/v1", "http://127.0.0.1/v1"],
    ["http://[::1]:8000/v1", "http://[::1]:8000/v1"],
    ["http://host/a/../v1", "http://host/v1"],
    ["http://host:11434", "http://host:11434"],
    ["http://my_service:8000/v1", "http://my_service:8000/v1"],
  ])("%s is taken as %s", (input, normalised) => {
    expect(parseBaseUrl(input)).toBe(normalised);
  });

  test.each([
    ["an IPv6 address without its bracket", "http://[::1:1/v1"],
    ["not a URL", "not a url"],
    ["another scheme", "ftp://host/v1"],
    ["a file URL", "file:///etc/passwd"],
    ["no host", "http:///v1"],
    ["no slashes", "http:host/v1"],
    ["a user and password", "http://user:pass@host/v1"],
    ["a user", "http://user@host/v1"],
    ["an empty user", "http://@host/v1"],
    ["a host disguised by a user", "http://good.example@evil.example/v1"],
    ["a query", "http://host/v1?x=1"],
    ["an empty query", "http://host/v1?"],
    ["a fragment", "http://host/v1#top"],
    ["a space", "http://host/v 1"],
    ["a newline", "http://ho\nst/v1"],
    ["a tab", "http://ho\tst/v1"],
    ["a backslash", "http://host\\v1"],
    ["port 0", "http://host:0/v1"],
    ["a port out of range", "http://host:65536/v1"],
    ["a bad IPv4 address", "http://1.2.3.999/v1"],
    ["too long", `http://host/${"a".repeat(2048)}`],
  ])("refused: %s", (_why, input) => {
    const { status, body } = refusal(() => parseBaseUrl(input));
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ type: "invalid_request_error", param: "base_url", code: "invalid_value" });
  });

  test("missing or not a string", () => {
    expect(refusal(() => parseBaseUrl(undefined)).body.error).toMatchObject({
      param: "base_url",
      code: "missing_required_parameter",
    });
    expect(refusal(() => parseBaseUrl(42)).body.error).toMatchObject({ param: "base_url", code: "invalid_value" });
    expect(refusal(() => parseBaseUrl({ href: "http://x" })).body.error.param).toBe("base_url");
  });
});

describe("an agent's ip_address and runtime_port", () => {
  test.each([
    ["127.0.0.1", 8000, "http://127.0.0.1:8000/v1"],
    ["::1", 8000, "http://[::1]:8000/v1"],
    ["[::1]", 8000, "http://[::1]:8000/v1"],
    ["fe80::1", 9, "http://[fe80::1]:9/v1"],
    ["::ffff:10.0.0.1", 1, "http://[::ffff:a00:1]:1/v1"],
    ["localhost", 65535, "http://localhost:65535/v1"],
    ["GPU-Box.lan", 8000, "http://gpu-box.lan:8000/v1"],
    ["gpu_box", "8000", "http://gpu_box:8000/v1"],
    ["10.0.0.2", 80, "http://10.0.0.2/v1"],
  ])("%s port %s is %s", (ip, port, url) => {
    expect(agentBaseUrl(ip, port)).toBe(url);
  });

  test.each([
    ["127.0.0.1:9/x?"],
    ["127.0.0.1/../../"],
    ["127.0.0.1:8000"],
    ["http://127.0.0.1"],
    ["user@host"],
    ["host#x"],
    ["host?x"],
    ["host name"],
    [" host"],
    ["host\n"],
    ["-host"],
    ["host-"],
    ["a..b"],
    ["1.2.3.999"],
    ["1.2.3.04"],
    ["999"],
    ["0x7f"],
    ["fe80::1%eth0"],
    ["[127.0.0.1]"],
    ["[::1"],
    ["::1]"],
    [`${"a".repeat(64)}.example`],
    [`${"a.".repeat(130)}b`],
    [""],
    [42],
    [null],
  ])("ip_address %j is refused", (ip) => {
    const { status, body } = refusal(() => agentBaseUrl(ip, 8000));
    expect(status).toBe(400);
    expect(body.error.param).toBe("ip_address");
    expect(body.error.code).toMatch(/^(invalid_value|missing_required_parameter)$/);
  });

  test.each([[0], [65536], [-1], [1.5], ["80a"], ["1e3"], [" 80"], [true], [null], [Number.NaN], [[80]]])(
    "runtime_port %j is refused",
    (port) => {
      const { status, body } = refusal(() => agentBaseUrl("127.0.0.1", port));
      expect(status).toBe(400);
      expect(body.error.param).toBe("runtime_port");
    },
  );

  test("the host is checked before the port, and each names its field", () => {
    expect(refusal(() => agentBaseUrl("127.0.0.1/../../", 1)).body.error.param).toBe("ip_address");
    expect(parseHost("Example.COM")).toBe("example.com");
    expect(parsePort("443")).toBe(443);
    expect(refusal(() => parsePort(undefined)).body.error.code).toBe("missing_required_parameter");
  });
});

describe("name and api_key", () => {
  test("a name is trimmed and capped", () => {
    expect(parseName(undefined)).toBeUndefined();
    expect(parseName("  gpu box ")).toBe("gpu box");
    expect(parseName("x".repeat(128))).toHaveLength(128);
    for (const bad of ["x".repeat(129), "", "   ", "a\nb", 5]) {
      expect(refusal(() => parseName(bad, "machine_name")).body.error).toMatchObject({
        param: "machine_name",
        code: "invalid_value",
      });
    }
  });

  test("an api_key is visible ASCII, and capped", () => {
    expect(parseApiKey(undefined)).toBeUndefined();
    expect(parseApiKey("")).toBeUndefined();
    expect(parseApiKey("sk-abc_123.XYZ")).toBe("sk-abc_123.XYZ");
    for (const bad of ["sk abc", "sk\r\nX-Injected: 1", "clé", "x".repeat(4097), 7]) {
      expect(refusal(() => parseApiKey(bad)).body.error).toMatchObject({ param: "api_key", code: "invalid_value" });
    }
  });
});

describe("endpoints", () => {
  test("absent is none listed; a list of known API paths is kept, without repeats", () => {
    expect(parseEndpoints(undefined)).toBeUndefined();
    expect(parseEndpoints(null)).toBeUndefined();
    expect(parseEndpoints([])).toEqual([]);
    expect(parseEndpoints(["/responses"])).toEqual(["/responses"]);
    expect(parseEndpoints(["/responses", "/embeddings", "/responses"])).toEqual(["/responses", "/embeddings"]);
    expect(parseEndpoints(["/chat/completions", "/completions", "/embeddings", "/responses"])).toHaveLength(4);
  });

  test.each<[string, unknown]>([
    ["a string", "/responses"],
    ["a string shorter than the list's limit", "/r"],
    ["an object", { "/responses": true }],
    ["an unknown path", ["/responses", "/v1/responses"]],
    ["a path without its slash", ["responses"]],
    ["a non-string element", ["/responses", 1]],
    ["a null element", [null]],
    ["a list longer than 16", Array(17).fill("/responses")],
  ])("%s is a 400 naming endpoints", (_, value) => {
    expect(refusal(() => parseEndpoints(value)).body.error).toMatchObject({
      param: "endpoints",
      code: "invalid_value",
    });
    expect(refusal(() => parseEndpoints(value)).status).toBe(400);
  });
});

test.each([
  ["http://host:8080", "http://host:8080/v1"],
  ["http://host:8080/api", "http://host:8080/api/v1"],
  ["http://host/v1/models", "http://host/v1"],
  ["http://host/openai/v1/chat/completions", "http://host/openai/v1"],
  ["http://host:8000/v1", null],
  ["http://host/openai/V1", null],
])("the /v1 suggested for %s is %s", (base, suggestion) => {
  expect(suggestV1(base)).toBe(suggestion);
});

describe("probing a runtime's /models at registration", () => {
  let server: http.Server;
  let origin: string;
  /** What the stand-in answers next: status, and body. */
  let reply: { status: number; body: string } = { status: 200, body: "" };
  const seen: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(req.url ?? "");
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(reply.body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const probe = (path: string, apiKey?: string) =>
    probeModels({ id: "ext-test", baseUrl: `${origin}${path}`, apiKey }, 5000);

  test("an OpenAI model list gives its ids", async () => {
    reply = { status: 200, body: JSON.stringify({ object: "list", data: [{ id: "a" }, { id: "b" }, null, {}] }) };
    await expect(probe("/v1")).resolves.toEqual(["a", "b"]);
    expect(seen.at(-1)).toBe("/v1/models");
  });

  test("a 404 names the URL tried and suggests the base URL ending in /v1", async () => {
    reply = { status: 404, body: JSON.stringify({ error: { message: "Not found" } }) };
    const { status, body } = await rejection(probe(""));
    expect(status).toBe(422);
    expect(body.error).toMatchObject({ param: "base_url", code: "not_an_openai_base_url" });
    expect(body.error.message).toContain(`${origin}/models answered 404`);
    expect(body.error.message).toContain(`try ${origin}/v1`);
  });

  test("a page that is not a model list: the same advice", async () => {
    reply = { status: 200, body: "<!doctype html><title>dashboard</title>" };
    const { status, body } = await rejection(probe("/ui"));
    expect(status).toBe(422);
    expect(body.error.message).toContain(`${origin}/ui/models did not answer an OpenAI model list`);
    expect(body.error.message).toContain(`try ${origin}/ui/v1`);
    reply = { status: 200, body: "null" };
    expect((await rejection(probe("/v1"))).status).toBe(422);
  });

  test("a refused key is a 422 on api_key, not a 401 (that would read as the client's own login failing)", async () => {
    reply = { status: 401, body: JSON.stringify({ error: { message: "Invalid API key" } }) };
    const { status, body } = await rejection(probe("/v1", "sk-wrong"));
    expect(status).toBe(422);
    expect(body.error).toMatchObject({ param: "api_key", code: "upstream_unauthorized" });
    expect(body.error.message).toContain(`${origin}/v1/models answered 401 (Invalid API key)`);
  });

  test("a runtime failing itself is a 502, never a 500", async () => {
    reply = { status: 500, body: "boom" };
    const { status, body } = await rejection(probe("/v1"));
    expect(status).toBe(502);
    expect(body.error).toMatchObject({ param: "base_url", code: "upstream_error" });
    expect(body.error.message).toContain(`${origin}/v1/models answered 500`);
  });

  test("another 4xx is a 422 naming the URL", async () => {
    reply = { status: 405, body: "" };
    const { status, body } = await rejection(probe("/v1"));
    expect(status).toBe(422);
    expect(body.error.message).toContain(`${origin}/v1/models answered 405`);
  });

  test("nothing listening: 502 upstream_unreachable naming the URL", async () => {
    const free = http.createServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", r));
    const port = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    const { status, body } = await rejection(
      probeModels({ id: "ext-dead", baseUrl: `http://127.0.0.1:${port}/v1` }, 5000),
    );
    expect(status).toBe(502);
    expect(body.error).toMatchObject({ param: "base_url", code: "upstream_unreachable" });
    expect(body.error.message).toContain(`Could not reach http://127.0.0.1:${port}/v1/models`);
  });
});
