/** An object-mode chunk stream relayed as Server-Sent Events (lib/http/respond.ts), over real HTTP. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { openStream, relaySse } from "../../../../lib/http/respond";

const chunk = (i: number) => ({
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: { content: `t${i}` } }],
});

/**
 * Serves one stream: `items` (chunks, or arrays of chunks: batches) written
 * to the source one turn of the event loop apart; answers what the client
 * read and how many writes the relay made.
 */
async function relay(items: unknown[], observe?: (c: unknown) => boolean): Promise<{ body: string; writes: number }> {
  let writes = 0;
  const server = http.createServer((req, res) => {
    const source = new PassThrough({ objectMode: true });
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    res.write = ((...args: unknown[]) => (writes++, write(...args))) as typeof res.write;
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
    const r = await fetch(`http://127.0.0.1:${port}/`);
    return { body: await r.text(), writes };
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

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
