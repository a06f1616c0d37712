/**
 * The one JSON body parser of every route (moleculer-web's routes and the
 * api's fast lane): body-parser with the router's size limit, then a bound on
 * nesting depth. Whatever a client sends that cannot be read becomes an
 * OpenAI-shaped 4xx here (a lying Content-Encoding, bad JSON, too large, too
 * deep), never a 500 further on. A UTF-8 body keeps the text it was parsed
 * from (lib/http/raw-json.ts): history records it as it came, without
 * serialising the parsed body again (a long prompt's whole length).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import bodyParser from "body-parser";
import bytes from "bytes";
import { apiError, toOpenAIError } from "../openai/errors";
import { keepText } from "./raw-json";
import { isPlainJson, parseStrict, readPlain } from "./plain-body";

/** The raw body body-parser read, until it is parsed. */
const RAW_BODY = Symbol("raw body");

/**
 * Deepest nesting a body may have. Real requests stay far below (a tool's
 * JSON schema a dozen levels deep is already unusual); deeper ones would
 * only overflow the stack of whatever walks them later (validation,
 * serialisation for history).
 */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests objects or arrays deeper than `max` levels (the top level counts as 1). */
export function deeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== "object") return false;
  // iterative, so that the check itself cannot overflow the stack
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > max) return true;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const c of children) if (c !== null && typeof c === "object") stack.push([c as object, depth + 1]);
  }
  return false;
}

/**
 * A body-parser (or zlib) error as the OpenAI error a client gets, made here
 * because moleculer-web would re-wrap it without the marks that say it is the
 * client's (and answer 500): the mapping is toOpenAIError's, and whatever it
 * cannot place is still a 400, never a 5xx.
 */
export function bodyError(err: unknown): Error {
  const { status, body } = toOpenAIError(err);
  if (status < 500) return apiError(status, body.error.message, body.error.code ?? "invalid_body");
  const detail = (err as { message?: unknown } | null)?.message;
  return apiError(400, `The request body could not be read: ${String(detail ?? "unreadable")}`, "invalid_body");
}

export interface JsonBodyOptions {
  /** body-parser's `limit`, e.g. "4mb". */
  limit: string;
  maxDepth?: number;
}

export type BodyMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** Connect-style middleware: `req.body` parsed, or `next(err)` with an OpenAI-shaped 4xx. */
export function jsonBody(opts: JsonBodyOptions): BodyMiddleware {
  const parse = bodyParser.json({
    limit: opts.limit,
    strict: true,
    // decoded already (Content-Encoding); kept when UTF-8, the charset JSON is sent in
    verify: (req, _res, buf, encoding) => {
      if (/^utf-?8$/i.test(encoding)) (req as { [RAW_BODY]?: Buffer })[RAW_BODY] = buf;
    },
  });
  const limit = bytes.parse(opts.limit) ?? Infinity;
  const maxDepth = opts.maxDepth ?? MAX_JSON_DEPTH;
  /** The parsed body checked for depth, keeping its text; `next` called once. */
  const accept = (req: IncomingMessage, body: unknown, text: string | null, next: (err?: unknown) => void) => {
    (req as { body?: unknown }).body = body;
    if (text !== null) keepText(body, text);
    if (deeperThan(body, maxDepth)) {
      return next(
        apiError(400, `The request body nests deeper than ${maxDepth} levels.`, "invalid_body", {
          param: null,
        }),
      );
    }
    next();
  };
  return (req, res, next) => {
    if (isPlainJson(req)) {
      readPlain(req, limit, (err, text) => {
        if (err) return next(bodyError(err));
        let body: unknown;
        try {
          body = parseStrict(text!);
        } catch (e) {
          return next(bodyError(e));
        }
        // a byte-order mark is not part of the JSON text
        accept(req, body, text!.charCodeAt(0) === 0xfeff ? null : text!, next);
      });
      return;
    }
    parse(req, res, (err?: unknown) => {
      const carrier = req as { [RAW_BODY]?: Buffer; body?: unknown };
      const raw = carrier[RAW_BODY];
      carrier[RAW_BODY] = undefined;
      if (err) return next(bodyError(err));
      accept(req, carrier.body, raw && raw[0] !== 0xef ? raw.toString("utf8") : null, next);
    });
  };
}

/** The same, as a promise (the fast lane). */
export function readJsonBody(parser: BodyMiddleware, req: IncomingMessage, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => parser(req, res, (err) => (err ? reject(err as Error) : resolve())));
}
