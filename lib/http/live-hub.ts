/**
 * Server-sent events for the dashboard: the clients connected now, and
 * coalesced signals so a busy cluster sends at most one frame per topic per
 * interval, whatever the rate of heartbeats or progress events.
 */
import type { ServerResponse } from "node:http";

export class LiveHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly keepAlive: NodeJS.Timeout;

  constructor(keepAliveMs = 20_000) {
    this.keepAlive = setInterval(() => this.write(": keep-alive\n\n"), keepAliveMs);
    this.keepAlive.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Opens an event stream on `res`; it is dropped when the client goes. */
  add(res: ServerResponse): void {
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache, no-transform",
      "X-Accel-Buffering": "no",
    });
    res.write("retry: 5000\n\n");
    this.clients.add(res);
    res.on("close", () => this.clients.delete(res));
  }

  send(event: string, data: unknown, to?: ServerResponse): void {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    if (to) to.write(frame);
    else this.write(frame);
  }

  /**
   * Sends `event` with what `produce` answers, at most once per `ms`: calls
   * during the wait are folded into the one pending send.
   */
  signal(event: string, ms: number, produce: () => Promise<unknown> | unknown): void {
    if (!this.clients.size || this.pending.has(event)) return;
    const timer = setTimeout(async () => {
      this.pending.delete(event);
      if (!this.clients.size) return;
      try {
        this.send(event, await produce());
      } catch {
        // the next signal tries again; a dashboard can live with one missed frame
      }
    }, ms);
    timer.unref();
    this.pending.set(event, timer);
  }

  /** Ends every stream (the api is stopping). */
  close(): void {
    clearInterval(this.keepAlive);
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private write(frame: string): void {
    for (const res of this.clients) res.write(frame);
  }
}
