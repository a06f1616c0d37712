/**
 * Playground: chat with any model of the cluster or a cloud, streamed, through
 * Chat Completions or the Responses API (playground-api.js); with
 * OpenAI tools and a response format while their panel is open.
 */
import { createParser } from "../../vendor/eventsource-parser.js";
import { api } from "../api.js";
import { h, mount, toast, field } from "../dom.js";
import { chatEvents, request, responsesEvents } from "./playground-api.js";

const EXAMPLE_TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The current weather in a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string", maxLength: 16, description: "The city's name" } },
        required: ["city"],
      },
    },
  },
];
const EXAMPLE_SCHEMA = {
  type: "object",
  properties: { answer: { type: "string", maxLength: 40 }, sure: { type: "boolean" } },
  required: ["answer", "sure"],
  additionalProperties: false,
};

// the conversation and the panel's settings survive moving between pages
const conversation = [];
let chosenModel = "";
let chosenApi = "chat";
const extras = {
  open: false,
  tools: JSON.stringify(EXAMPLE_TOOLS, null, 2),
  toolChoice: "auto",
  format: "text",
  schemaName: "answer",
  schema: JSON.stringify(EXAMPLE_SCHEMA, null, 2),
};

/** The tools textarea's array ([] when empty), or the reason it is not one. */
function parseTools(text) {
  if (!text.trim()) return { tools: [] };
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `Tools: not JSON (${err.message}).` };
  }
  if (!Array.isArray(value)) return { error: "Tools: a JSON array of tool definitions is needed." };
  return { tools: value };
}

/** The schema textarea's object, or the reason it is not one. */
function parseSchema(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `Schema: not JSON (${err.message}).` };
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return { error: "Schema: a JSON object is needed." };
  return { schema: value };
}

/** The function names of tool definitions, each once. */
function toolNames(tools) {
  const names = tools.map((t) => t?.function?.name).filter((n) => typeof n === "string" && n);
  return [...new Set(names)];
}

export function render(main) {
  const model = h("select", { name: "model", "aria-label": "Model", required: true });
  const apiChoice = h(
    "select",
    { name: "api", "aria-label": "API", "data-testid": "playground-api" },
    h("option", { value: "chat", selected: chosenApi === "chat" }, "Chat Completions"),
    h("option", { value: "responses", selected: chosenApi === "responses" }, "Responses"),
  );
  const system = h("textarea", { name: "system", rows: "2", placeholder: "optional system prompt" });
  const maxTokens = h("input", { name: "max_tokens", type: "number", min: "1", max: "4096", value: "128" });
  const temperature = h("input", {
    name: "temperature",
    type: "number",
    min: "0",
    max: "2",
    step: "0.1",
    value: "0.7",
  });
  const log = h("div", { class: "chat-log", role: "log", "aria-live": "polite" });
  const prompt = h("textarea", {
    name: "prompt",
    rows: "3",
    placeholder: "Say something… (Ctrl+Enter sends)",
    required: true,
    "aria-label": "Message",
  });
  const send = h("button", { type: "submit" }, "Send");
  const stop = h("button", { type: "button", class: "secondary", hidden: true }, "Stop");
  const clear = h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: () => {
        conversation.length = 0;
        draw();
      },
    },
    "Clear",
  );
  const meta = h("span", { class: "muted small" });
  let controller = null;

  // tools and response format: sent while their panel is open
  const toolsText = h("textarea", {
    name: "tools",
    rows: "10",
    class: "mono small",
    spellcheck: "false",
    value: extras.tools,
  });
  const toolsError = h("p", { class: "error small", role: "alert", "data-error": "tools", hidden: true });
  const toolChoice = h("select", { name: "tool_choice" });
  const format = h(
    "select",
    { name: "response_format" },
    ["text", "json_object", "json_schema"].map((f) => h("option", { value: f, selected: extras.format === f }, f)),
  );
  const schemaName = h("input", { name: "schema_name", value: extras.schemaName });
  const schemaText = h("textarea", {
    name: "schema",
    rows: "8",
    class: "mono small",
    spellcheck: "false",
    value: extras.schema,
  });
  const schemaError = h("p", { class: "error small", role: "alert", "data-error": "schema", hidden: true });
  // (a plain div: the grid's display would win over `hidden`)
  const schemaBox = h(
    "div",
    { hidden: extras.format !== "json_schema" },
    h("div", { class: "form-grid" }, field("Schema name", schemaName), field("JSON schema", schemaText), schemaError),
  );
  const panel = h(
    "details",
    { class: "chat-extras", open: extras.open },
    h("summary", {}, "Tools and response format"),
    h(
      "p",
      { class: "muted small" },
      "Sent with each message while this panel is open (in the Responses API's shape when it is chosen). Tool calls are shown, not run, and not sent back.",
    ),
    field("Tools (JSON array)", toolsText),
    toolsError,
    h("div", { class: "form-grid cols" }, field("Tool choice", toolChoice), field("Response format", format)),
    schemaBox,
  );
  const showError = (box, input, message) => {
    box.textContent = message ?? "";
    box.hidden = !message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
  };
  // the choices: auto, none, required, and each function once the JSON parses
  const drawChoices = () => {
    const { tools, error } = parseTools(toolsText.value);
    showError(toolsError, toolsText, error);
    if (error) return;
    const values = ["auto", "none", "required", ...toolNames(tools).map((n) => `function:${n}`)];
    if (!values.includes(extras.toolChoice)) extras.toolChoice = "auto";
    mount(
      toolChoice,
      values.map((v) =>
        h("option", { value: v, selected: v === extras.toolChoice }, v.replace(/^function:/, "function ")),
      ),
    );
  };
  toolsText.addEventListener("input", () => {
    extras.tools = toolsText.value;
    drawChoices();
  });
  toolChoice.addEventListener("change", () => (extras.toolChoice = toolChoice.value));
  format.addEventListener("change", () => {
    extras.format = format.value;
    schemaBox.hidden = format.value !== "json_schema";
  });
  schemaName.addEventListener("input", () => (extras.schemaName = schemaName.value));
  schemaText.addEventListener("input", () => {
    extras.schema = schemaText.value;
    showError(schemaError, schemaText, parseSchema(schemaText.value).error);
  });
  panel.addEventListener("toggle", () => (extras.open = panel.open));
  drawChoices();

  /** The request's tools, tool_choice and response_format; null (errors shown) when a textarea is not valid. */
  const extraFields = () => {
    if (!panel.open) return {};
    const out = {};
    const { tools, error } = parseTools(toolsText.value);
    showError(toolsError, toolsText, error);
    if (error) {
      toolsText.focus();
      return null;
    }
    if (tools.length) {
      out.tools = tools;
      const c = toolChoice.value;
      out.tool_choice = c.startsWith("function:") ? { type: "function", function: { name: c.slice(9) } } : c;
    }
    if (format.value === "json_object") out.response_format = { type: "json_object" };
    else if (format.value === "json_schema") {
      const { schema, error: wrong } = parseSchema(schemaText.value);
      showError(schemaError, schemaText, wrong);
      if (wrong) {
        schemaText.focus();
        return null;
      }
      out.response_format = {
        type: "json_schema",
        json_schema: { name: schemaName.value.trim() || "answer", schema, strict: true },
      };
    }
    return out;
  };

  // one block per tool call: the function's name, its arguments as they arrive
  const callBlock = (call, i) =>
    h(
      "div",
      { class: "tool-call", "data-tool-call": String(i) },
      h("div", { class: "tool-call-name mono" }, call.function.name),
      h("pre", { class: "tool-call-args" }, call.function.arguments),
    );
  const finishText = (reason) => (reason ? `finish reason: ${reason}` : "");
  const bubble = (m) =>
    h(
      "div",
      { class: `msg ${m.role}`, "data-role": m.role },
      h("div", { class: "msg-role" }, m.role),
      h("div", { class: "msg-text" }, m.content),
      h(
        "div",
        { class: "tool-calls" },
        (m.tool_calls ?? []).map((c, i) => c && callBlock(c, i)),
      ),
      h("div", { class: "msg-finish muted small", "data-finish": m.finish_reason ?? "" }, finishText(m.finish_reason)),
    );
  const draw = () =>
    mount(
      log,
      conversation.length ? conversation.map(bubble) : h("p", { class: "muted" }, "Pick a model and send a message."),
    );

  const form = h(
    "form",
    { class: "card chat-form", "aria-label": "Chat" },
    h(
      "div",
      { class: "form-grid cols" },
      field("Model", model),
      field("API", apiChoice),
      field("Max tokens", maxTokens),
      field("Temperature", temperature),
    ),
    field("System prompt", system),
    panel,
    log,
    prompt,
    h("div", { class: "row spread" }, meta, h("div", { class: "row" }, clear, stop, send)),
  );
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  model.addEventListener("change", () => (chosenModel = model.value));
  apiChoice.addEventListener("change", () => (chosenApi = apiChoice.value));
  stop.addEventListener("click", () => controller?.abort());

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = prompt.value.trim();
    if (!text || !model.value) return;
    const extra = extraFields();
    if (!extra) return;
    conversation.push({ role: "user", content: text });
    prompt.value = "";
    const answer = { role: "assistant", content: "", tool_calls: [], finish_reason: null };
    conversation.push(answer);
    draw();
    const answerEl = log.lastElementChild;
    const answerText = answerEl.querySelector(".msg-text");
    const callsBox = answerEl.querySelector(".tool-calls");
    const finishEl = answerEl.querySelector(".msg-finish");
    controller = new AbortController();
    send.disabled = true;
    stop.hidden = false;
    meta.textContent = "…";
    const started = performance.now();
    let first = null;
    let tokens = 0;
    // what either API's events do to the answer
    const sink = {
      text(delta) {
        first ??= performance.now();
        answer.content += delta;
        answerText.textContent = answer.content;
        log.scrollTop = log.scrollHeight;
      },
      call(i) {
        first ??= performance.now();
        return (answer.tool_calls[i] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
      },
      drawCall(i) {
        const call = answer.tool_calls[i];
        const block = callsBox.querySelector(`[data-tool-call="${i}"]`) ?? callsBox.appendChild(callBlock(call, i));
        block.querySelector(".tool-call-name").textContent = call.function.name;
        block.querySelector(".tool-call-args").textContent = call.function.arguments;
        log.scrollTop = log.scrollHeight;
      },
      finish(reason) {
        answer.finish_reason = reason;
        finishEl.textContent = finishText(reason);
        finishEl.dataset.finish = reason;
      },
      usage: (n) => (tokens = n),
    };
    const viaResponses = apiChoice.value === "responses";
    const { path, body } = request(viaResponses, {
      model: model.value,
      system: system.value.trim(),
      maxTokens: Number(maxTokens.value) || 128,
      temperature: Number(temperature.value),
      conversation: conversation.slice(0, -1),
      extra,
    });
    try {
      const res = await api.raw("POST", path, body, controller.signal);
      const node = res.headers.get("x-router-node");
      const parser = createParser({ onEvent: (viaResponses ? responsesEvents : chatEvents)(sink) });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
      const total = performance.now() - started;
      meta.textContent = `${node ? `node ${node} · ` : ""}first token ${Math.round((first ?? total) - started)} ms · ${tokens || "?"} tokens in ${(total / 1000).toFixed(2)} s`;
    } catch (err) {
      if (err.name === "AbortError") meta.textContent = "Stopped.";
      else {
        toast(err.message, "error");
        meta.textContent = "";
        if (!answer.content && !answer.tool_calls.length) conversation.splice(conversation.length - 2, 2);
        draw();
      }
    } finally {
      controller = null;
      send.disabled = false;
      stop.hidden = true;
    }
  });

  mount(main, h("h1", {}, "Playground"), form);
  draw();
  api.get("/api/playground/models").then(
    (res) => {
      const ids = res.data.map((m) => m.id);
      mount(
        model,
        ids.length
          ? ids.map((id) => h("option", { value: id, selected: id === chosenModel }, id))
          : h("option", { value: "" }, "no model is served now"),
      );
      chosenModel = model.value;
    },
    (err) => toast(err.message, "error"),
  );
  return () => controller?.abort();
}
