/**
 * The plain JSON body (no charset or UTF-8, no Content-Encoding) is read
 * without body-parser (lib/http/plain-body.ts): what a client gets must not
 * depend on which path read its body. `Content-Encoding: identity` sends the
 * same bytes through body-parser.
 */
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { jsonBody } from "../../../../lib/http/body";
import { isPlainJson } from "../../../../lib/http/plain-body";
import { toJson } from "../../../../lib/http/raw-json";
import { sendError } from "../../../../lib/http/respond";

let server: http.Server;
let port: number;
/** What the parser called back with, per request, in order. */
const outcomes: Array<{ plain: boolean; err: boolean }> = [];
let onOutcome: (() => void) | null = null;

beforeAll(async () => {
  const parse = jsonBody({ limit: "1kb" });
  server = http.createServer((req, res) => {
    const plain = isPlainJson(req);
    parse(req, res, (err) => {
      outcomes.push({ plain, err: !!err });
      onOutcome?.();
      if (err) return void sendError(res, err);
      const body = (req as { body?: unknown }).body;
      res.end(JSON.stringify({ text: toJson(body), body }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function post(body: Buffer | string, headers: Record<string, string>) {
  const r = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers, body });
  const json = (await r.json()) as { text?: string; body?: unknown; error?: { code: string | null; type: string } };
  return { status: r.status, ...json };
}

const BOM = "\ufeff";
const cases: Array<[string, string | Buffer]> = [
  ["an object", '{"model": "m",  "n": 1.50, "s": "ü✓"}'],
  ["an array", "[1, 2]"],
  ["an empty body", ""],
  ["only spaces", "   "],
  ["spaces, then an object", '  \n {"a":1}'],
  ["a number", "123"],
  ["a string", '"x"'],
  ["null", "null"],
  ["cut short", '{"model": '],
  ["a byte-order mark", `${BOM}{"a":1}`],
  ["invalid UTF-8", Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])],
  ["over the limit", JSON.stringify({ a: "x".repeat(2000) })],
];

describe("the plain path answers as body-parser does", () => {
  test.each(cases)("%s", async (_what, body) => {
    const plain = await post(body, { "content-type": "application/json" });
    const parsed = await post(body, { "content-type": "application/json", "content-encoding": "identity" });
    expect(outcomes.slice(-2).map((o) => o.plain)).toEqual([true, false]);
    expect(plain.status).toBe(parsed.status);
    expect(plain.error?.code).toBe(parsed.error?.code);
    expect(plain.error?.type).toBe(parsed.error?.type);
    expect(plain.body).toEqual(parsed.body);
    expect(plain.text).toBe(parsed.text);
  });

  test("a UTF-8 charset takes the plain path and keeps the text", async () => {
    const text = '{"b": 2,  "a": [1e3]}';
    const utf8 = await post(text, { "content-type": "application/json; charset=UTF-8" });
    expect(outcomes.at(-1)!.plain).toBe(true);
    expect(utf8.text).toBe(text);
  });
});

/** Sends raw HTTP; resolves with the answer once its JSON body has come (or the server closed). */
function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
    let got = "";
    socket.on("data", (d) => {
      got += d.toString();
      if (/\r\n\r\n/.test(got) && /"error"|"text"/.test(got)) {
        socket.destroy();
        resolve(got);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(got));
  });
}

describe("reading a plain body", () => {
  test("chunked, in several chunks: parsed, its text kept", async () => {
    const text = '{"model":"m","messages":[]}';
    const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
    const got = await raw(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
        chunk(text.slice(0, 5)) +
        chunk(text.slice(5, 12)) +
        chunk(text.slice(12)) +
        "0\r\n\r\n",
    );
    expect(got).toMatch(/^HTTP\/1.1 200/);
    expect(JSON.parse(got.slice(got.indexOf("\r\n\r\n") + 4)).text).toBe(text);
  });

  test("chunked past the limit: 413", async () => {
    const big = "x".repeat(1500);
    const got = await raw(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
        `${(big.length + 8).toString(16)}\r\n{"a":"${big}"}\r\n0\r\n\r\n`,
    );
    expect(got).toMatch(/^HTTP\/1.1 413/);
    expect(got).toMatch(/request_too_large/);
  });

  test("a client that leaves mid-body: the parser calls back with an error, once", async () => {
    const before = outcomes.length;
    const called = new Promise<void>((resolve) => (onOutcome = resolve));
    const socket = net.connect(port, "127.0.0.1", () => {
      const head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
      socket.write(`${head}{`, () => socket.destroy());
    });
    await called;
    onOutcome = null;
    expect(outcomes.slice(before)).toEqual([{ plain: true, err: true }]);
  });
});
