/**
 * A token's chunk on a token lane (lib/cluster/token-lanes.ts) as its text
 * alone. Most chunks of a stream are one token: the same id, object, created
 * and model as the stream's first chunk, one choice at index 0, its text and
 * nothing else. A node sends such a chunk as the token's string; the router
 * makes the chunk again from its stream's first chunk, with its JSON text
 * kept beside it (lib/http/raw-json.ts), so the relay writes it without
 * serialising it.
 *
 * The lane message is then a few bytes a token rather than the whole chunk
 * (less to serialise at the node, to parse at the router), and the text the
 * router writes is the one `JSON.stringify` gives for the chunk the node
 * made, byte for byte: a chunk of any other shape, key order included, goes
 * whole. A router asks for this in the call's meta (`laneTokens`); a node
 * that does not know it sends whole chunks, which any router reads.
 */
import { keepJsonText } from "../http/raw-json";

/** What every chunk of a stream repeats. */
interface Head {
  id: unknown;
  object: unknown;
  created: unknown;
  model: unknown;
}

const CHAT = "chat.completion.chunk";
const TEXT = "text_completion";
const CHUNK_KEYS = ["id", "object", "created", "model", "choices"];
const CHAT_CHOICE_KEYS = ["index", "delta", "logprobs", "finish_reason"];
const TEXT_CHOICE_KEYS = ["index", "text", "logprobs", "finish_reason"];

function sameKeys(value: object, keys: string[]): boolean {
  let i = 0;
  for (const k in value) if (k !== keys[i++]) return false;
  return i === keys.length;
}

function headOf(chunk: unknown): Head | null {
  if (chunk === null || typeof chunk !== "object" || Array.isArray(chunk)) return null;
  const c = chunk as Head;
  if (c.object !== CHAT && c.object !== TEXT) return null;
  // what the router writes back into the chunk's text: JSON of these exactly
  if (typeof c.id !== "string" || typeof c.model !== "string" || !Number.isFinite(c.created)) return null;
  return { id: c.id, object: c.object, created: c.created, model: c.model };
}

/** The token a chunk carries, when it is only that token of a stream whose first chunk was `head`; else null. */
function tokenOf(chunk: unknown, head: Head): string | null {
  if (chunk === null || typeof chunk !== "object") return null;
  const c = chunk as Head & { choices?: unknown };
  if (c.id !== head.id || c.object !== head.object || c.created !== head.created || c.model !== head.model) return null;
  if (!sameKeys(c, CHUNK_KEYS) || !Array.isArray(c.choices) || c.choices.length !== 1) return null;
  const choice = c.choices[0] as {
    index?: unknown;
    delta?: unknown;
    text?: unknown;
    logprobs?: unknown;
    finish_reason?: unknown;
  };
  if (choice === null || typeof choice !== "object" || choice.index !== 0) return null;
  if (choice.logprobs !== null || choice.finish_reason !== null) return null;
  if (head.object === TEXT)
    return sameKeys(choice, TEXT_CHOICE_KEYS) && typeof choice.text === "string" ? choice.text : null;
  if (!sameKeys(choice, CHAT_CHOICE_KEYS)) return null;
  const delta = choice.delta as { content?: unknown } | null;
  return delta !== null &&
    typeof delta === "object" &&
    sameKeys(delta, ["content"]) &&
    typeof delta.content === "string"
    ? delta.content
    : null;
}

/** The node's side, one a stream: each chunk as it goes on the lane. */
export class TokenPacker {
  private head: Head | null = null;

  pack(chunk: unknown): unknown {
    if (this.head) {
      const token = tokenOf(chunk, this.head);
      if (token !== null) return token;
    } else this.head = headOf(chunk);
    return chunk;
  }
}

/** The router's side, one a stream: each item of the lane back to its chunk. */
export class TokenUnpacker {
  private prefix = "";
  private suffix = "";
  private head: Head | null = null;

  /** The chunk `item` stands for; throws when a token comes before any chunk it could belong to. */
  unpack(item: unknown): unknown {
    if (typeof item !== "string") {
      if (!this.head) this.learn(item);
      return item;
    }
    const head = this.head;
    if (!head) throw new Error("a token came before its stream's first chunk");
    const text = `${this.prefix}${JSON.stringify(item)}${this.suffix}`;
    const chunk =
      head.object === CHAT
        ? {
            id: head.id,
            object: head.object,
            created: head.created,
            model: head.model,
            choices: [{ index: 0, delta: { content: item }, logprobs: null, finish_reason: null }],
          }
        : {
            id: head.id,
            object: head.object,
            created: head.created,
            model: head.model,
            choices: [{ index: 0, text: item, logprobs: null, finish_reason: null }],
          };
    keepJsonText(chunk, text);
    return chunk;
  }

  private learn(chunk: unknown): void {
    const head = headOf(chunk);
    if (!head) return;
    this.head = head;
    const start = `{"id":${JSON.stringify(head.id)},"object":${JSON.stringify(head.object)},"created":${JSON.stringify(head.created)},"model":${JSON.stringify(head.model)},"choices":[{"index":0,`;
    this.prefix = head.object === CHAT ? `${start}"delta":{"content":` : `${start}"text":`;
    this.suffix =
      head.object === CHAT ? `},"logprobs":null,"finish_reason":null}]}` : `,"logprobs":null,"finish_reason":null}]}`;
  }
}
