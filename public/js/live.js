/**
 * Live updates from `GET /api/dashboard/events` (server-sent events, read
 * with fetch so the login token goes in a header). Pages subscribe to
 * `nodes` (the node table), `request` (a finished request) and `tasks`
 * (download/conversion progress). Reconnects with backoff.
 */
import { createParser } from "../vendor/eventsource-parser.js";
import { session } from "./api.js";

const listeners = new Map();
let controller = null;
let retryMs = 1000;
let connected = false;
const statusListeners = new Set();

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
  return () => listeners.get(event).delete(fn);
}

export function onStatus(fn) {
  statusListeners.add(fn);
  fn(connected);
}

function setConnected(value) {
  connected = value;
  for (const fn of statusListeners) fn(value);
}

function dispatch(event, data) {
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    return;
  }
  for (const fn of listeners.get(event) ?? []) fn(parsed);
}

export function connect() {
  disconnect();
  const ctl = new AbortController();
  controller = ctl;
  run(ctl).catch(() => undefined);
}

export function disconnect() {
  controller?.abort();
  controller = null;
  setConnected(false);
}

async function run(ctl) {
  while (!ctl.signal.aborted && session.valid()) {
    try {
      const res = await fetch("/api/dashboard/events", {
        headers: { Authorization: `Bearer ${session.token}` },
        signal: ctl.signal,
      });
      if (res.status === 401) {
        session.end("Your session has ended. Please log in again.");
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      setConnected(true);
      retryMs = 1000;
      const parser = createParser({ onEvent: (e) => dispatch(e.event ?? "message", e.data) });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    } catch {
      if (ctl.signal.aborted) return;
    }
    setConnected(false);
    await new Promise((r) => setTimeout(r, retryMs));
    retryMs = Math.min(retryMs * 2, 30_000);
  }
}
