/**
 * The common request body read without body-parser: `Content-Type:
 * application/json` (no charset, or UTF-8), no `Content-Encoding`, a length
 * or a chunked body. That is what every OpenAI, Anthropic and Ollama client
 * sends, on every inference request; body-parser's machinery around the same
 * read (content-type and charset parsing, the decoder lookup, raw-body's
 * bookkeeping, the text decoded twice to keep it) was a noticeable part of a
 * request's CPU (bench/RESULTS.md, session 17). Anything else (a charset, a
 * compressed body, another type, no body) still goes through body-parser
 * (lib/http/body.ts). The errors are shaped as body-parser's, so that
 * `bodyError` answers both paths alike.
 */
import type { IncomingMessage } from "node:http";

const UTF8_PARAM = /^application\/json\s*;\s*charset="?utf-?8"?\s*$/i;

/** Whether body-parser's work can be skipped for this request's body. */
export function isPlainJson(req: IncomingMessage): boolean {
  const h = req.headers;
  if (h["content-encoding"] !== undefined) return false;
  if (h["content-length"] === undefined && h["transfer-encoding"] === undefined) return false;
  const type = h["content-type"];
  return type === "application/json" || (type !== undefined && UTF8_PARAM.test(type));
}

/** An error as body-parser (http-errors) makes them: `type` and `status` are what `toOpenAIError` reads. */
function bodyFailure(status: number, message: string, type: string): Error {
  return Object.assign(new Error(message), { status, statusCode: status, expose: true, type });
}

/** Reads off what is left of the request (so the connection stays usable), then calls `done` once. */
function dump(req: IncomingMessage, done: () => void): void {
  if (req.readableEnded || req.destroyed) return done();
  let called = false;
  const once = () => {
    if (called) return;
    called = true;
    done();
  };
  req.once("end", once);
  req.once("close", once);
  req.resume();
}

/**
 * The body as UTF-8 text, at most `limit` bytes (413 past it, told by the
 * declared length before reading when it says so, as body-parser does); a
 * request the client abandons ends in a 400 `request.aborted`.
 */
export function readPlain(req: IncomingMessage, limit: number, done: (err: Error | null, text?: string) => void): void {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return dump(req, () => done(tooLarge()));
  // gone already (while its key was checked): no 'end' or 'close' is coming
  if (req.destroyed) return done(bodyFailure(400, "request aborted", "request.aborted"));
  new PlainRead(req, limit, done).start();
}

const tooLarge = () => bodyFailure(413, "request entity too large", "entity.too.large");

/**
 * One body being read. Its listeners are bound methods, not closures: the
 * services run through tsx, whose esbuild names every closure assigned to a
 * name (`keepNames`), a property definition each, on every request.
 */
class PlainRead {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private finished = false;
  private readonly onData: (chunk: Buffer) => void;
  private readonly onEnd: () => void;
  private readonly onClose: () => void;
  private readonly onError: (err: Error) => void;

  constructor(
    private readonly req: IncomingMessage,
    private readonly limit: number,
    private readonly done: (err: Error | null, text?: string) => void,
  ) {
    this.onData = this.data.bind(this);
    this.onEnd = this.finish.bind(this, null);
    this.onClose = this.closed.bind(this);
    this.onError = this.failed.bind(this);
  }

  start(): void {
    this.req.on("data", this.onData);
    this.req.on("end", this.onEnd);
    this.req.on("close", this.onClose);
    this.req.on("error", this.onError);
  }

  private data(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > this.limit) this.finish(tooLarge());
    else this.chunks.push(chunk);
  }

  /** 'close' before 'end': the client went away mid-body. */
  private closed(): void {
    this.finish(bodyFailure(400, "request aborted", "request.aborted"));
  }

  private failed(err: Error): void {
    this.finish(bodyFailure(400, err.message, "request.error"));
  }

  private finish(err: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    const req = this.req;
    req.removeListener("data", this.onData);
    req.removeListener("end", this.onEnd);
    req.removeListener("close", this.onClose);
    req.removeListener("error", this.onError);
    if (err) return dump(req, () => this.done(err));
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
    this.done(null, buf.toString("utf8"));
  }
}

/**
 * body-parser's strict JSON: an empty body is `{}`, anything but an object
 * or an array at the top is refused, as is text that is not JSON (400
 * `entity.parse.failed`). A leading byte-order mark is skipped.
 */
export function parseStrict(text: string): unknown {
  const json = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (json.length === 0) return {};
  const first = json[0] === "{" || json[0] === "[" ? json[0] : json.trimStart()[0];
  if (first !== "{" && first !== "[") {
    throw bodyFailure(
      400,
      first === undefined
        ? "Unexpected end of JSON input"
        : `Unexpected token '${first}': the body must be a JSON object or array`,
      "entity.parse.failed",
    );
  }
  try {
    return JSON.parse(json);
  } catch (err) {
    throw bodyFailure(400, (err as Error).message, "entity.parse.failed");
  }
}
