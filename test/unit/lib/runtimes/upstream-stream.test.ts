/**
 * A runtime's event stream as chunks (lib/runtimes/openai-upstream.ts), over
 * real HTTP: every chunk in order and the end, however the runtime's writes
 * fall into reads (the first events go on before the rest of their read).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { changed, toJson } from "../../../../lib/http/raw-json";
import { Cancel } from "../../../../lib/upstreams/cancel";
import { callUpstream } from "../../../../lib/runtimes/openai-upstream";
import { afterEvents } from "../../../../lib/runtimes/sse-chunks";
import type { ChatJob } from "../../../../lib/inference/types";

const chunk = (i: number) => ({
  id: "c",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: { content: `t${i}` } }],
});
const event = (i: number) => `data: ${JSON.stringify(chunk(i))}\n\n`;

/** Closes `server` with its kept-alive connections. */
const closed = (server: http.Server) =>
  new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });

/**
 * A runtime answering every stream with `parts` written one after another
 * (each part one write; a part that is a list: its texts in one write each,
 * back to back, as a server writing each event as it comes does).
 */
async function runtime(
  parts: Array<string | string[]>,
  encoding: BufferEncoding = "utf8",
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const write = (i: number) => {
        if (i === parts.length) return void res.end();
        const texts = [parts[i]].flat();
        for (const t of texts.slice(0, -1)) res.write(t, encoding);
        res.write(texts[texts.length - 1], encoding, () => setImmediate(() => write(i + 1)));
      };
      write(0);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => closed(server),
  };
}

/** The stream's items: chunks, and arrays of the chunks of a burst. */
async function items(parts: Array<string | string[]>, encoding?: BufferEncoding): Promise<unknown[]> {
  const rt = await runtime(parts, encoding);
  try {
    const job = {
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stop: [],
    } as unknown as ChatJob;
    const stream = (await callUpstream({ id: "rt", baseUrl: rt.url }, "chat", job, new Cancel())) as Readable;
    const out: unknown[] = [];
    for await (const c of stream) out.push(c);
    return out;
  } finally {
    await rt.close();
  }
}

/** The tokens of the stream's chunks, in order. */
async function contents(parts: string[], encoding?: BufferEncoding): Promise<string[]> {
  return (await items(parts, encoding))
    .flatMap((c) => (Array.isArray(c) ? c : [c]))
    .map((c) => (c as ReturnType<typeof chunk>).choices[0].delta.content);
}

const all = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);

describe("where the first events of a read end", () => {
  test("after the nth blank line, in any line ending; -1 when the text holds fewer", () => {
    expect(afterEvents("data: a\n\ndata: b\n\ndata: c\n\n", 2)).toBe(18);
    expect(afterEvents("data: a\r\n\r\ndata: b\r\rrest", 2)).toBe(20);
    expect(afterEvents("data: a\n\ndata: b", 2)).toBe(-1);
    expect(afterEvents("data: a\n\n", 1)).toBe(9);
  });
});

describe("a runtime's stream as chunks", () => {
  test("the whole answer and [DONE] in one write", async () => {
    const body = Array.from({ length: 300 }, (_, i) => event(i)).join("") + "data: [DONE]\n\n";
    expect(await contents([body])).toEqual(all(300));
  });

  test("the whole answer in one write, the connection's end without [DONE]", async () => {
    expect(await contents([Array.from({ length: 50 }, (_, i) => event(i)).join("")])).toEqual(all(50));
  });

  test("one event per write, then a burst, then one event split over two writes", async () => {
    const burst = Array.from({ length: 40 }, (_, i) => event(i + 3)).join("");
    const last = event(43);
    const parts = [event(0), event(1), event(2), burst, last.slice(0, 20), last.slice(20), "data: [DONE]\n\n"];
    expect(await contents(parts)).toEqual(all(44));
  });

  test("a burst after the first events comes as one batch, each chunk with the text it came as", async () => {
    // spaced as no JSON.stringify writes it: relayed unchanged, the client gets the runtime's own text
    const spaced = (i: number) => JSON.stringify(chunk(i), null, 1).replace(/\n/g, " ");
    const body = Array.from({ length: 10 }, (_, i) => `data: ${spaced(i)}\n\n`).join("") + "data: [DONE]\n\n";
    const got = await items([body]);
    // the two early events at once, the rest of the read parsed on the next turn, together
    expect(got.map((c) => (c as unknown[]).length)).toEqual([2, 8]);
    const chunks = got.flatMap((c) => (Array.isArray(c) ? c : [c]));
    expect(chunks.map(toJson)).toEqual(Array.from({ length: 10 }, (_, i) => spaced(i)));
    // changed: serialised again, with the change
    changed(chunks[0]);
    (chunks[0] as { model?: string }).model = "alias";
    expect(JSON.parse(toJson(chunks[0]))).toEqual({ ...chunk(0), model: "alias" });
  });

  test("events written one by one but read at once come as one batch after the first ones", async () => {
    // each write is its own HTTP chunk, and the body gives each as its own data: still parsed and passed on together
    const burst = Array.from({ length: 100 }, (_, i) => event(i + 1));
    const got = await items([event(0), [...burst, "data: [DONE]\n\n"]]);
    expect(got.map((c) => (Array.isArray(c) ? c.length : 1))).toEqual([1, 1, 99]);
    const chunks = got.flatMap((c) => (Array.isArray(c) ? c : [c]));
    expect(chunks.map((c) => (c as ReturnType<typeof chunk>).choices[0].delta.content)).toEqual(all(101));
  });

  test("an event that is JSON but no object fails the stream", async () => {
    await expect(contents([event(0) + "data: 42\n\n"])).rejects.toMatchObject({
      code: 502,
      message: expect.stringContaining("not JSON"),
    });
  });

  test("a character whose bytes are split over two writes arrives whole", async () => {
    const bytes = Buffer.from(
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: "héllo ✓" } }] })}\n\n`,
    );
    const cut = bytes.indexOf(Buffer.from("é")) + 1; // between the two bytes of é
    const parts = [bytes.subarray(0, cut).toString("latin1"), bytes.subarray(cut).toString("latin1")];
    expect(await contents(parts, "latin1")).toEqual(["héllo ✓"]);
  });

  test("an error event in a burst fails the stream after the chunks before it", async () => {
    const body = event(0) + event(1) + event(2) + `data: ${JSON.stringify({ error: { message: "boom" } })}\n\n`;
    await expect(contents([body])).rejects.toMatchObject({ message: expect.stringContaining("boom") });
  });
});

describe("a runtime's kept-alive connections", () => {
  test("a connection the runtime drops before answering is tried once more on a fresh one", async () => {
    const perSocket = new WeakMap<object, number>();
    let dropped = 0;
    const server = http.createServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      req.resume();
      req.on("end", () => {
        // the second request on a connection: the runtime closed it meanwhile (as an idle timeout would)
        if (n === 2) {
          dropped++;
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ object: "chat.completion", n }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    try {
      const rt = { id: "rt", baseUrl: `http://127.0.0.1:${port}/v1` };
      const job = {
        model: "m",
        messages: [{ role: "user", content: "hi" }],
        stream: false,
        stop: [],
      } as unknown as ChatJob;
      const call = () => callUpstream(rt, "chat", job, new Cancel());
      expect(JSON.parse(JSON.stringify(await call()))).toEqual({ object: "chat.completion", n: 1 });
      // calls until one goes on the kept connection (idle in the pool a turn of the event loop after the
      // answer) and the runtime drops it: every call still answers, from a connection's first request
      for (let i = 0; i < 20 && dropped === 0; i++) {
        await new Promise((r) => setImmediate(r));
        expect(JSON.parse(JSON.stringify(await call()))).toEqual({ object: "chat.completion", n: 1 });
      }
      expect(dropped).toBe(1);
    } finally {
      await closed(server);
    }
  });

  test("cancelling a call that is not streamed aborts it at the runtime, at once", async () => {
    let closedByRouter!: () => void;
    const gone = new Promise<void>((r) => (closedByRouter = r));
    let arrived!: () => void;
    const held = new Promise<void>((r) => (arrived = r));
    // a runtime that never answers
    const server = http.createServer((req) => {
      req.socket.once("close", closedByRouter);
      arrived();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const { port } = server.address() as AddressInfo;
      const job = { model: "m", messages: [], stream: false, stop: [] } as unknown as ChatJob;
      const cancel = new Cancel();
      const call = callUpstream({ id: "rt", baseUrl: `http://127.0.0.1:${port}/v1` }, "chat", job, cancel);
      await held;
      cancel.abort();
      await expect(call).rejects.toMatchObject({ name: "AbortError" });
      await gone;
    } finally {
      server.closeAllConnections();
      await closed(server);
    }
  });

  test("a runtime that refuses connections is a 502 naming it", async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((r) => server.close(() => r()));
    const job = { model: "m", messages: [], stream: false, stop: [] } as unknown as ChatJob;
    await expect(
      callUpstream({ id: "gone", baseUrl: `http://127.0.0.1:${port}/v1` }, "chat", job, new Cancel()),
    ).rejects.toMatchObject({ code: 502, message: expect.stringContaining("gone could not be reached") });
  });
});
