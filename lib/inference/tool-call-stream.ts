/**
 * Turns node-llama-cpp's function-call parameter chunks into OpenAI's tool
 * calls: an id per call, streamed fragments (the first of a call with its id
 * and name, then pieces of its arguments' JSON text) and the finished calls.
 * Whitespace the grammar lets the model write around the JSON is not sent.
 */
import { callId } from "./llama-tools";
import type { ToolCall, ToolCallFragment } from "./types";

interface Pending {
  id: string;
  name: string;
  text: string;
  /** Whitespace held back until something follows it (trailing whitespace is dropped). */
  held: string;
}

export class ToolCallStream {
  private readonly calls: Pending[] = [];

  constructor(private readonly emit?: (f: ToolCallFragment) => void) {}

  /** A chunk of call `index`'s parameters. */
  add(index: number, name: string, chunk: string): void {
    const call = this.open(index, name);
    if (/^\s*$/.test(chunk)) {
      if (call.text) call.held += chunk;
      return;
    }
    const piece = (call.text ? call.held : "") + (call.text ? chunk : chunk.trimStart());
    call.held = "";
    call.text += piece;
    this.emit?.({ index, arguments: piece });
  }

  /**
   * The calls the model made, in order, with the ids their fragments carried;
   * a call without parameters gets `{}`.
   */
  finish(made: ReadonlyArray<{ functionName: string; params?: unknown }>): ToolCall[] {
    return made.map((c, index) => {
      const call = this.open(index, c.functionName);
      if (!call.text) {
        call.text = c.params === undefined ? "{}" : JSON.stringify(c.params);
        this.emit?.({ index, arguments: call.text });
      }
      return { id: call.id, name: call.name, arguments: call.text };
    });
  }

  private open(index: number, name: string): Pending {
    let call = this.calls[index];
    if (!call) {
      call = { id: callId(), name, text: "", held: "" };
      this.calls[index] = call;
      this.emit?.({ index, id: call.id, name, arguments: "" });
    }
    return call;
  }
}
