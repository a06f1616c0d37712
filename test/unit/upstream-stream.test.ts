/**
 * A runtime's event stream as chunks (lib/runtimes/openai-upstream.ts), over
 * real HTTP: every chunk in order and the end, however the runtime's writes
 * fall into reads (the first events go on before the rest of their read).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { callUpstream } from "../../lib/runtimes/openai-upstream";
import type { ChatJob } from "../../lib/inference/types";

const chunk = (i: number) => ({
  id: "c",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: { content: `t${i}` } }],
});
const event = (i: number) => `data: ${JSON.stringify(chunk(i))}\n\n`;

/** A runtime answering every stream with `parts` written one after another (each part one write). */
async function runtime(parts: string[]): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const write = (i: number) => {
        if (i === parts.length) return void res.end();
        res.write(parts[i], () => setImmediate(() => write(i + 1)));
      };
      write(0);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

async function contents(parts: string[]): Promise<string[]> {
  const rt = await runtime(parts);
  try {
    const job = {
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stop: [],
    } as unknown as ChatJob;
    const stream = (await callUpstream(
      { id: "rt", baseUrl: rt.url },
      "chat",
      job,
      new AbortController().signal,
    )) as Readable;
    const out: string[] = [];
    for await (const c of stream) out.push((c as ReturnType<typeof chunk>).choices[0].delta.content);
    return out;
  } finally {
    await rt.close();
  }
}

const all = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);

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

  test("an error event in a burst fails the stream after the chunks before it", async () => {
    const body = event(0) + event(1) + event(2) + `data: ${JSON.stringify({ error: { message: "boom" } })}\n\n`;
    await expect(contents([body])).rejects.toMatchObject({ message: expect.stringContaining("boom") });
  });
});
