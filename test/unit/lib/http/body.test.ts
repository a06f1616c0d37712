/**
 * The JSON body parser keeps the text a UTF-8 body came as with the parsed
 * body: history records what the client sent without serialising it again.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import zlib from "node:zlib";
import { jsonBody } from "../../../../lib/http/body";
import { toJson } from "../../../../lib/http/raw-json";

let server: http.Server;
let url: string;

beforeAll(async () => {
  const parse = jsonBody({ limit: "1mb" });
  server = http.createServer((req, res) =>
    parse(req, res, (err) => {
      const body = (req as { body?: unknown }).body;
      res.end(JSON.stringify(err ? { error: String(err) } : { json: toJson(body), body }));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function send(body: Buffer | string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  return (await r.json()) as { json?: string; body?: unknown; error?: string };
}

test("a body's text is kept as sent: spacing, key order and number forms", async () => {
  const text = '{"b": 1.50, "a":[1e3, "ü\\u00fc"],  "model":"m"}';
  const r = await send(text);
  expect(r.json).toBe(text);
  expect(r.body).toEqual({ b: 1.5, a: [1000, "üü"], model: "m" });
});

test("a gzip body's decoded text is kept", async () => {
  const text = '{"model":"m","n":1.0}';
  const r = await send(zlib.gzipSync(text), { "content-encoding": "gzip" });
  expect(r.json).toBe(text);
});

test("a body over several lines, or not UTF-8, is serialised afresh", async () => {
  expect((await send('{\n  "model": "m"\n}')).json).toBe('{"model":"m"}');
  const utf16 = Buffer.from('{"model":"m"}', "utf16le");
  const r = await send(utf16, { "content-type": "application/json; charset=utf-16le" });
  // body-parser decodes any UTF charset: its bytes are never taken as UTF-8 text
  expect(r.json).toBe('{"model":"m"}');
});
