/**
 * A chat job's conversation as node-llama-cpp's chat history, so that the
 * model's own chat wrapper renders it in its template's format. An
 * assistant's tool calls become function calls of its turn, and each `tool`
 * message becomes the result of the call it answers: node-llama-cpp keeps a
 * call and its result together inside the model's turn, and text the
 * assistant says after the results continues that same turn.
 */
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from "node-llama-cpp" with {
  "resolution-mode": "import",
};
import type { ChatMessage } from "./types";

/** A tool call's arguments as the model wrote them: JSON when they parse, else the text. */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function chatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const calls = new Map<string, ChatModelFunctionCall>();
  // the model turn that tool results and the assistant's next words continue
  let openTurn: ChatModelResponse | null = null;
  for (const m of messages) {
    if (m.role === "system") {
      history.push({ type: "system", text: m.content });
      openTurn = null;
    } else if (m.role === "user") {
      history.push({ type: "user", text: m.content });
      openTurn = null;
    } else if (m.role === "tool") {
      const call = calls.get(m.toolCallId);
      // an answer to an unknown call is refused when the job is made (lib/openai/jobs.ts)
      if (call) call.result = parsed(m.content);
    } else {
      const turn: ChatModelResponse = openTurn ?? { type: "model", response: [] };
      if (!openTurn) history.push(turn);
      if (m.content) turn.response.push(m.content);
      (m.toolCalls ?? []).forEach((c, i) => {
        const call: ChatModelFunctionCall = {
          type: "functionCall",
          name: c.name,
          params: parsed(c.arguments),
          result: "",
          startsNewChunk: i === 0,
        };
        calls.set(c.id, call);
        turn.response.push(call);
      });
      // after tool calls the turn goes on (results, then more words); after plain words a new turn starts
      openTurn = m.toolCalls?.length ? turn : null;
    }
  }
  if (history[history.length - 1]?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}
