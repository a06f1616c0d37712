/**
 * A small HTTP client for a started router, for the tests that talk to one
 * over real HTTP: the base URL, the credential and JSON bodies in one place.
 *
 *   const admin = routerClient(router.url, { token: await login(router.url) });
 *   const user = routerClient(router.url, { key, chat: { model: MODEL, messages: [...] } });
 *   expect((await admin.json("GET", "/api/nodes")).status).toBe(200);
 *   const res = await user.chat({ stream: true }); // a fetch Response, to read as the test needs
 *
 * Bodies: `undefined` sends none, a string or bytes go as they are, anything
 * else as JSON; a request with a body says `content-type: application/json`.
 * The credential goes as `authorization: Bearer …`. A call's headers win.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary JSON
export type Json = any;

/** An answer read whole. */
export interface Answer<T = Json> {
  status: number;
  headers: Headers;
  /** The body as text; "" for an event stream, which is not read (it may never end: its headers are the answer). */
  text: string;
  /** The body parsed as JSON; null when it is empty (and, from `answer()`, when it is not JSON). */
  body: T;
}

export interface ClientOptions {
  /** An API key, sent as `authorization: Bearer <key>`. */
  key?: string;
  /** A login token, sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Fields every `chat()` body starts from (model, messages, max_tokens…); the call's own fields win. */
  chat?: Record<string, unknown>;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  redirect?: RequestInit["redirect"];
}

export interface RouterClient {
  readonly url: string;
  /** The same router with another credential (the chat fields kept). */
  as(credential: Pick<ClientOptions, "key" | "token">): RouterClient;
  /** Any request; the answer unread. */
  request(method: string, path: string, body?: unknown, opts?: RequestOptions): Promise<Response>;
  get(path: string, opts?: RequestOptions): Promise<Response>;
  post(path: string, body?: unknown, opts?: RequestOptions): Promise<Response>;
  /** POST /v1/chat/completions with the client's chat fields under `body`. */
  chat(body?: Record<string, unknown>, opts?: RequestOptions): Promise<Response>;
  /** A request whose answer must be JSON (or empty): fails, with the text, when it is not. */
  json<T = Json>(method: string, path: string, body?: unknown, opts?: RequestOptions): Promise<Answer<T>>;
  /** A request read whole whatever it answers: `body` is null when the text is not JSON. */
  answer<T = Json>(method: string, path: string, body?: unknown, opts?: RequestOptions): Promise<Answer<T>>;
  /** GET /v1/models (with the key): the served models; fails unless 200. */
  models(): Promise<Array<{ id: string; nodes: string[] }>>;
  /** GET /api/nodes (with a login): the node table; fails unless 200. */
  nodes(): Promise<Json[]>;
}

export function routerClient(url: string, options: ClientOptions = {}): RouterClient {
  if (options.key !== undefined && options.token !== undefined) throw new Error("routerClient: a key or a token");
  const bearer = options.key ?? options.token;

  const request = (method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<Response> => {
    const raw = typeof body === "string" || body instanceof Uint8Array;
    return fetch(`${url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...opts.headers,
      },
      body: body === undefined ? undefined : raw ? (body as string | Uint8Array) : JSON.stringify(body),
      signal: opts.signal,
      redirect: opts.redirect,
    });
  };

  const read = async <T>(method: string, path: string, res: Response, strict: boolean): Promise<Answer<T>> => {
    const stream = res.ok && res.headers.get("content-type")?.startsWith("text/event-stream");
    if (stream) await res.body?.cancel();
    const text = stream ? "" : await res.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        if (strict) throw new Error(`${method} ${path} answered ${res.status} with text that is not JSON: ${text}`);
      }
    }
    return { status: res.status, headers: res.headers, text, body: body as T };
  };

  const client: RouterClient = {
    url,
    as: (credential) => routerClient(url, { chat: options.chat, ...credential }),
    request,
    get: (path, opts) => request("GET", path, undefined, opts),
    post: (path, body, opts) => request("POST", path, body, opts),
    chat: (body = {}, opts) => request("POST", "/v1/chat/completions", { ...options.chat, ...body }, opts),
    json: async (method, path, body, opts) => read(method, path, await request(method, path, body, opts), true),
    answer: async (method, path, body, opts) => read(method, path, await request(method, path, body, opts), false),
    models: async () => (await ok(client, "/v1/models")).data,
    nodes: () => ok(client, "/api/nodes"),
  };
  return client;
}

async function ok(client: RouterClient, path: string): Promise<Json> {
  const r = await client.json("GET", path);
  if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}: ${r.text}`);
  return r.body;
}

/** A finished event stream: its events, and the JSON chunks of all but a final `data: [DONE]`. */
export function sse(text: string): { events: string[]; done: boolean; chunks: Json[] } {
  const events = text.split("\n\n").filter(Boolean);
  const done = events[events.length - 1] === "data: [DONE]";
  const chunks = (done ? events.slice(0, -1) : events).map((e) => JSON.parse(e.replace(/^data: /, "")));
  return { events, done, chunks };
}
