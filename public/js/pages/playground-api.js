/**
 * What the playground sends and how it reads the stream, per API: Chat
 * Completions (`/api/playground/chat`) or the Responses API
 * (`/api/playground/responses`, the conversation and the panel's chat-shaped
 * fields translated). Either stream's events become the same calls on a
 * `sink` ({ text(delta), call(i) → the answer's i-th chat-shaped tool call,
 * drawCall(i), finish(reason), usage(outputTokens) }); an error in the stream
 * is thrown with its message.
 */

/** A message of the conversation as it is sent: tool calls are shown, not sent back (no tool answers them). */
function outgoing(m) {
  return m.role === "assistant" && !m.content ? null : { role: m.role, content: m.content };
}

/**
 * The request's path and body. `conversation`: without the answer being asked for; `extra`: the
 * panel's tools, tool_choice and response_format (chat-shaped).
 */
export function request(viaResponses, { model, system, maxTokens, temperature, conversation, extra }) {
  if (viaResponses) {
    const body = {
      model,
      input: inputOf(conversation),
      ...(system ? { instructions: system } : {}),
      max_output_tokens: maxTokens,
      temperature,
      stream: true,
      // nothing to continue from: each turn sends the whole conversation
      store: false,
      ...extrasOf(extra),
    };
    return { path: "/api/playground/responses", body };
  }
  const messages = [
    ...(system ? [{ role: "system", content: system }] : []),
    ...conversation.map(outgoing).filter(Boolean),
  ];
  return {
    path: "/api/playground/chat",
    body: {
      model,
      messages,
      stream: true,
      max_tokens: maxTokens,
      temperature,
      stream_options: { include_usage: true },
      ...extra,
    },
  };
}

/** An onEvent for createParser: each chat chunk onto `sink`. */
export function chatEvents(sink) {
  return (ev) => {
    if (ev.data === "[DONE]") return;
    const chunk = JSON.parse(ev.data);
    if (chunk.error) throw new Error(chunk.error.message);
    const choice = chunk.choices?.[0];
    const delta = choice?.delta?.content ?? "";
    if (delta) sink.text(delta);
    // a call's id and name come first, then its arguments' JSON text in pieces
    for (const d of choice?.delta?.tool_calls ?? []) {
      const i = Number.isInteger(d.index) ? d.index : 0;
      const call = sink.call(i);
      if (d.id) call.id = d.id;
      if (d.function?.name) call.function.name += d.function.name;
      if (d.function?.arguments) call.function.arguments += d.function.arguments;
      sink.drawCall(i);
    }
    if (choice?.finish_reason) sink.finish(choice.finish_reason);
    if (chunk.usage) sink.usage(chunk.usage.completion_tokens);
  };
}

/** Chat tools ({type, function: {…}}) in the Responses shape ({type, name, …}); others as they are. */
function toolOf(t) {
  if (t?.type !== "function" || !t.function) return t;
  const { name, description, parameters, strict } = t.function;
  return { type: "function", name, description, parameters, strict };
}

/** The panel's tools, tool_choice and response_format as the Responses API names them. */
function extrasOf({ tools, tool_choice: choice, response_format: format }) {
  const out = {};
  if (tools) out.tools = tools.map(toolOf);
  if (choice !== undefined)
    out.tool_choice = choice?.function ? { type: "function", name: choice.function.name } : choice;
  if (format?.type === "json_schema") out.text = { format: { type: "json_schema", ...format.json_schema } };
  else if (format) out.text = { format: { type: format.type } };
  return out;
}

/**
 * The conversation as input items. An assistant turn's tool calls go back only with their
 * outputs (tool messages), as in chat: the router refuses a call that nothing answered.
 */
function inputOf(conversation) {
  const answered = new Set(conversation.filter((m) => m.role === "tool").map((m) => m.tool_call_id));
  return conversation.flatMap((m) => {
    if (m.role === "tool") return [{ type: "function_call_output", call_id: m.tool_call_id, output: m.content }];
    const items = m.content ? [{ type: "message", role: m.role, content: m.content }] : [];
    for (const c of m.tool_calls ?? []) {
      if (c && answered.has(c.id)) {
        items.push({ type: "function_call", call_id: c.id, name: c.function.name, arguments: c.function.arguments });
      }
    }
    return items;
  });
}

/** A response's end as a chat finish reason: stop, tool_calls, length (max_output_tokens) or the reason given. */
function finishOf(response, incomplete) {
  if (incomplete) {
    const reason = response?.incomplete_details?.reason;
    return reason === "max_output_tokens" ? "length" : reason || "incomplete";
  }
  return (response?.output ?? []).some((i) => i.type === "function_call") ? "tool_calls" : "stop";
}

/** An onEvent for createParser: each Responses event onto `sink`; response.failed and error events throw. */
export function responsesEvents(sink) {
  // a function_call item's id → its index among the answer's tool calls
  const calls = new Map();
  const callOf = (itemId) => {
    if (!calls.has(itemId)) calls.set(itemId, calls.size);
    return calls.get(itemId);
  };
  return (ev) => {
    const data = JSON.parse(ev.data);
    const type = data.type ?? ev.event;
    const item = data.item;
    if (type === "response.output_text.delta") sink.text(data.delta ?? "");
    else if (type === "response.output_item.added" && item?.type === "function_call") {
      const i = callOf(item.id ?? data.output_index);
      const call = sink.call(i);
      call.id = item.call_id ?? call.id;
      call.function.name = item.name ?? "";
      call.function.arguments = item.arguments ?? "";
      sink.drawCall(i);
    } else if (type === "response.function_call_arguments.delta") {
      const i = callOf(data.item_id ?? data.output_index);
      sink.call(i).function.arguments += data.delta ?? "";
      sink.drawCall(i);
    } else if (type === "response.function_call_arguments.done") {
      const i = callOf(data.item_id ?? data.output_index);
      const call = sink.call(i);
      if (data.name) call.function.name = data.name;
      if (typeof data.arguments === "string") call.function.arguments = data.arguments;
      sink.drawCall(i);
    } else if (type === "response.completed" || type === "response.incomplete") {
      sink.finish(finishOf(data.response, type === "response.incomplete"));
      const tokens = data.response?.usage?.output_tokens;
      if (tokens) sink.usage(tokens);
    } else if (type === "response.failed") {
      throw new Error(data.response?.error?.message ?? "The response failed.");
    } else if (type === "error") {
      throw new Error(data.message ?? data.error?.message ?? "The stream failed.");
    }
  };
}
