/**
 * The client's address: the socket's, or what `X-Forwarded-For` says when the
 * request came through a proxy listed in LLM_ROUTER_TRUSTED_PROXIES.
 */
import type { IncomingMessage } from "node:http";
import proxyAddr from "proxy-addr";

export function clientIpResolver(trusted: string[]): (req: IncomingMessage) => string {
  if (!trusted.length) return (req) => req.socket.remoteAddress ?? "unknown";
  const trust = proxyAddr.compile(trusted);
  return (req) => proxyAddr(req, trust);
}
