/**
 * A Moleculer transporter between the worker processes of one router
 * (LLM_ROUTER_PROCESSES > 1 without a TRANSPORTER): each worker's broker
 * sends its packets to the primary over Node's IPC channel and the primary
 * hands each one to the workers subscribed to its topic, as NATS would. Like
 * Moleculer's Fake transporter it leaves balancing to the brokers.
 *
 * Nothing per request travels here in the normal case (keys are verified
 * from a local cache and history is sent in batches), only discovery,
 * heartbeats, management calls and events.
 */
import { Transporters } from "moleculer";

/** The IPC messages of the transporter (structured clone keeps Buffers). */
export type IpcMessage =
  | { llmRouterIpc: "sub"; topic: string }
  | { llmRouterIpc: "pub"; topic: string; data: Uint8Array }
  | { llmRouterIpc: "msg"; topic: string; data: Uint8Array }
  /** From a worker: it hears the primary's commands now (a message sent before is lost). */
  | { llmRouterIpc: "listening" }
  /** From a worker: its broker has started. */
  | { llmRouterIpc: "ready" }
  /** From the primary: take no new connections (process 0, while the gateways drain). */
  | { llmRouterIpc: "close" }
  /** From the primary: drain and stop, as on a first SIGTERM. */
  | { llmRouterIpc: "stop" };

export function isIpcMessage(m: unknown): m is IpcMessage {
  return typeof m === "object" && m !== null && "llmRouterIpc" in m;
}

/** The channel of a forked process: `process` in a worker, a stand-in in tests. */
export interface IpcChannel {
  send?(message: IpcMessage): unknown;
  on(event: "message", listener: (message: unknown) => void): unknown;
  off(event: "message", listener: (message: unknown) => void): unknown;
}

export class IpcTransporter extends Transporters.Base {
  private readonly channel: IpcChannel;
  private readonly onMessage = (m: unknown) => {
    if (!isIpcMessage(m) || m.llmRouterIpc !== "msg" || !this.connected) return;
    const cmd = this.commands.get(m.topic);
    if (cmd) void this.receive(cmd, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  };
  /** topic → Moleculer command, for what arrives. */
  private readonly commands = new Map<string, string>();

  constructor(channel: IpcChannel = process) {
    super({});
    this.channel = channel;
    this.hasBuiltInBalancer = true;
  }

  connect(): Promise<void> {
    if (!this.channel.send) return Promise.reject(new Error("the IPC transporter runs in a forked worker only"));
    this.channel.on("message", this.onMessage);
    return this.onConnected();
  }

  disconnect(): Promise<void> {
    this.connected = false;
    this.channel.off("message", this.onMessage);
    return Promise.resolve();
  }

  subscribe(cmd: string, nodeID?: string): Promise<void> {
    const topic = this.getTopicName(cmd, nodeID);
    if (!this.commands.has(topic)) this.channel.send?.({ llmRouterIpc: "sub", topic });
    this.commands.set(topic, cmd);
    return Promise.resolve();
  }

  subscribeBalancedRequest(): Promise<void> {
    return Promise.resolve();
  }

  subscribeBalancedEvent(): Promise<void> {
    return Promise.resolve();
  }

  send(topic: string, data: Buffer): Promise<void> {
    if (!this.connected) return Promise.resolve();
    this.channel.send?.({ llmRouterIpc: "pub", topic, data });
    return Promise.resolve();
  }
}

/** What the primary needs of a worker: an id and its IPC channel. */
export interface RelayPeer {
  id: number;
  send(message: IpcMessage): unknown;
}

/**
 * The primary's side: remembers each worker's topics and passes every
 * published packet to the workers subscribed to its topic (the sender too,
 * as a NATS subject would; Moleculer ignores its own packets).
 */
export class IpcRelay {
  private readonly topics = new Map<number, Set<string>>();
  private readonly peers = new Map<number, RelayPeer>();

  add(peer: RelayPeer): void {
    this.peers.set(peer.id, peer);
    this.topics.set(peer.id, new Set());
  }

  remove(id: number): void {
    this.peers.delete(id);
    this.topics.delete(id);
  }

  /** Handles one message from worker `from`; false if it was not the transporter's. */
  handle(from: number, m: unknown): boolean {
    if (!isIpcMessage(m)) return false;
    if (m.llmRouterIpc === "sub") this.topics.get(from)?.add(m.topic);
    else if (m.llmRouterIpc === "pub") {
      for (const [id, set] of this.topics) {
        if (set.has(m.topic)) this.peers.get(id)?.send({ llmRouterIpc: "msg", topic: m.topic, data: m.data });
      }
    }
    return true;
  }
}
