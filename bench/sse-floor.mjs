// The floor for relaying token streams from Node: a bare node:http server that answers every POST
// with an OpenAI-style SSE stream of TOKENS chunks, one every MS_PER_TOKEN ms, each JSON.stringify'd
// and written on its own (one write a token a client, as a router that relays tokens as they come
// must), then [DONE]. No auth, no parsing of the request, no transporter, no history.
// RAW_WRITE=1: each token after the first goes straight to the socket as an HTTP/1.1 chunk framed here
// (one string, one syscall), as the router's relay writes (lib/http/respond.ts), rather than by res.write.
// usage: PORT=0 TOKENS=100 MS_PER_TOKEN=20 [RAW_WRITE=1] node bench/sse-floor.mjs   (prints "sse-floor on PORT")
import http from "node:http";

const TOKENS = Number(process.env.TOKENS ?? 100);
const MS = Number(process.env.MS_PER_TOKEN ?? 20);
let n = 0;
const RAW = process.env.RAW_WRITE === "1";

const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    const id = `chatcmpl-${(++n).toString(16).padStart(32, "0")}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta, finish = null) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: "bench-instant", choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write(chunk({ role: "assistant", content: "" }));
    let i = 0;
    const timer = setInterval(() => {
      if (i < TOKENS) {
        i++;
        const text = chunk({ content: "x" });
        if (RAW) res.socket.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
        else res.write(text);
        return;
      }
      clearInterval(timer);
      res.end(chunk({}, "length") + "data: [DONE]\n\n");
    }, MS);
    res.on("close", () => clearInterval(timer));
  });
});
server.keepAliveTimeout = 75_000;
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => console.log(`sse-floor on ${server.address().port}`));
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
