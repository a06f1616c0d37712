/** An object-mode chunk stream relayed as Server-Sent Events (lib/http/respond.ts), over real HTTP. */
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { ChunkWriter, openStream, relaySse } from "../../../../lib/http/respond";

const chunk = (i: number) => ({
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: { content: `t${i}` } }],
});

/**
 * Serves one stream: `items` (chunks, or arrays of chunks: batches) written
 * to the source one turn of the event loop apart; answers what the client
 * read and how many writes the relay made.
 */
async function relay(
  items: unknown[],
  observe?: (c: unknown) => boolean,
  client: (port: number) => Promise<string> = async (port) => (await fetch(`http://127.0.0.1:${port}/`)).text(),
): Promise<{ body: string; writes: number }> {
  let writes = 0;
  const counted = new WeakSet<object>();
  let inResponse = false;
  const server = http.createServer((req, res) => {
    const source = new PassThrough({ objectMode: true });
    // a write is one through the response, or one straight to its socket (the socket's writes from inside the response's are its)
    const inside =
      <A extends unknown[], R>(f: (...args: A) => R, count: boolean) =>
      (...args: A): R => {
        if (count) writes++;
        inResponse = true;
        try {
          return f(...args);
        } finally {
          inResponse = false;
        }
      };
    res.write = inside(res.write.bind(res) as (...args: unknown[]) => boolean, true) as typeof res.write;
    res.end = inside(res.end.bind(res) as (...args: unknown[]) => typeof res, false) as typeof res.end;
    // (the connection's: a pipelined response has no socket of its own until the one before it ends)
    const socket = req.socket;
    if (!counted.has(socket)) {
      counted.add(socket);
      const socketWrite = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      socket.write = ((...args: unknown[]) => {
        if (!inResponse) writes++;
        const ok = socketWrite(...args);
        if (!ok) onFullSocket?.();
        return ok;
      }) as typeof socket.write;
    }
    const feed = (i: number) => {
      if (i === items.length) return void source.end();
      source.write(items[i]);
      setImmediate(() => feed(i + 1));
    };
    feed(0);
    void openStream(source, 5000).then((opened) => relaySse(res, opened, 5000, observe));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const { port } = server.address() as AddressInfo;
    return { body: await client(port), writes };
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** Called when a write to a response's socket meets a full socket (the relay must then wait for it to drain). */
let onFullSocket: (() => void) | null = null;

const events = (ns: number[]) => ns.map((i) => `data: ${JSON.stringify(chunk(i))}\n\n`).join("");

test("every chunk in order, then [DONE]; a batch in one write", async () => {
  const batch = Array.from({ length: 50 }, (_, i) => chunk(i + 2));
  const { body, writes } = await relay([chunk(0), chunk(1), batch, chunk(52)]);
  expect(body).toBe(events(Array.from({ length: 53 }, (_, i) => i)) + "data: [DONE]\n\n");
  // one write for each item (the end is res.end): not one for each chunk of the batch
  expect(writes).toBe(4);
});

test("a chunk the observer refuses is not sent, inside a batch too", async () => {
  const { body, writes } = await relay(
    [chunk(0), [chunk(1), chunk(2), chunk(3)], [chunk(4)]],
    (c) =>
      (c as ReturnType<typeof chunk>).choices[0].delta.content !== "t2" &&
      (c as ReturnType<typeof chunk>).choices[0].delta.content !== "t4",
  );
  expect(body).toBe(events([0, 1, 3]) + "data: [DONE]\n\n");
  // an item left with nothing to send is not written at all
  expect(writes).toBe(2);
});

/** Sends `request` on a plain socket; answers all the server sent until it closed. */
function rawClient(request: string): (port: number) => Promise<string> {
  return (port) =>
    new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
      let got = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => (got += d));
      socket.on("error", reject);
      socket.on("close", () => resolve(got));
    });
}

/** An HTTP/1.1 chunked body, decoded. */
function unchunk(body: string): string {
  let out = "";
  for (let at = 0; ;) {
    const eol = body.indexOf("\r\n", at);
    const size = parseInt(body.slice(at, eol), 16);
    if (!size) return out;
    const data = Buffer.from(body.slice(eol + 2), "utf8")
      .subarray(0, size)
      .toString("utf8");
    out += data;
    at = eol + 2 + data.length + 2;
  }
}

test("an HTTP/1.0 client (no chunked encoding) reads the events as they are, to the close", async () => {
  const { body } = await relay(
    [chunk(0), chunk(1), [chunk(2), chunk(3)]],
    undefined,
    rawClient("GET / HTTP/1.0\r\n\r\n"),
  );
  const [head, rest] =
    body.split("\r\n\r\n", 2).length === 2
      ? [body.slice(0, body.indexOf("\r\n\r\n")), body.slice(body.indexOf("\r\n\r\n") + 4)]
      : [body, ""];
  expect(head).toMatch(/^HTTP\/1\.1 200/);
  expect(head.toLowerCase()).not.toContain("transfer-encoding");
  expect(rest).toBe(events([0, 1, 2, 3]) + "data: [DONE]\n\n");
});

test("two pipelined streams on one connection each get their own events, in order", async () => {
  const bodies: string[] = [];
  const { body } = await relay(
    [chunk(0), [chunk(1), chunk(2)], chunk(3)],
    undefined,
    rawClient("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
  );
  for (const part of body.split(/HTTP\/1\.1 200 OK\r\n/).slice(1))
    bodies.push(unchunk(part.slice(part.indexOf("\r\n\r\n") + 4)));
  expect(bodies).toEqual([events([0, 1, 2, 3]) + "data: [DONE]\n\n", events([0, 1, 2, 3]) + "data: [DONE]\n\n"]);
});

test("a client that reads slowly gets every byte, in order", async () => {
  const big = (i: number) => ({ ...chunk(i), pad: String(i % 10).repeat(256 * 1024) });
  const items = Array.from({ length: 24 }, (_, i) => big(i));
  const expected = items.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n";
  const { body } = await relay(
    items,
    undefined,
    (port) =>
      new Promise((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${port}/`, (res) => {
            let got = "";
            res.setEncoding("utf8");
            // nothing is read until the relay has met a full socket and has to wait for it to drain
            res.pause();
            onFullSocket = () => {
              onFullSocket = null;
              setImmediate(() => res.resume());
            };
            let reads = 0;
            res.on("data", (d: string) => {
              got += d;
              if (++reads % 8 === 0) {
                res.pause();
                setImmediate(() => res.resume());
              }
            });
            res.on("end", () => resolve(got));
          })
          .on("error", reject);
      }),
  );
  expect(body.length).toBe(expected.length);
  expect(body).toBe(expected);
});

test("an empty write leaves the body open (an empty HTTP/1.1 chunk would end it)", async () => {
  const server = http.createServer((req, res) => {
    const out = new ChunkWriter(res);
    res.writeHead(200, { "Content-Type": "text/plain" });
    for (const text of ["a", "", "b", "", "c"]) out.write(text);
    res.end("d");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const { port } = server.address() as AddressInfo;
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("abcd");
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
