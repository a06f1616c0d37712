/** A held response end (lib/http/hold-end.ts), over real HTTP. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { holdEnd, type HeldEnd } from "../../../../lib/http/hold-end";

let server: http.Server;
let url: string;
let held: HeldEnd | null = null;
let answer: (res: http.ServerResponse) => void;

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    held = holdEnd(res);
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(resolve));
});

test("the client gets the first bytes at once and the last ones only on release", async () => {
  answer = (res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("first ");
    res.end("last");
  };
  const response = await fetch(url);
  const reader = response.body!.getReader();
  const first = await reader.read();
  expect(Buffer.from(first.value!).toString()).toBe("first ");
  let ended = false;
  const rest = (async () => {
    let text = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += Buffer.from(r.value).toString();
    ended = true;
    return text;
  })();
  await new Promise((resolve) => setImmediate(resolve));
  expect(ended).toBe(false);
  held!.release();
  expect(await rest).toBe("last");
});

test("a whole answer given to end() waits as a whole: nothing is sent before release; release twice ends once", async () => {
  let answered!: (sent: { bytes: number; ended: boolean }) => void;
  const handled = new Promise<{ bytes: number; ended: boolean }>((resolve) => (answered = resolve));
  answer = (res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true }), () => undefined);
    answered({ bytes: res.socket!.bytesWritten, ended: res.writableEnded });
  };
  const response = fetch(url).then((r) => r.json());
  expect(await handled).toEqual({ bytes: 0, ended: false });
  held!.release();
  held!.release();
  expect(await response).toEqual({ ok: true });
});
