/** Playground: chat with any model of the cluster or a cloud, streamed. */
import { createParser } from "../../vendor/eventsource-parser.js";
import { api } from "../api.js";
import { h, mount, toast, field } from "../dom.js";

// the conversation survives moving between pages
const conversation = [];
let chosenModel = "";

export function render(main) {
  const model = h("select", { name: "model", "aria-label": "Model", required: true });
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

  const bubble = (m) =>
    h(
      "div",
      { class: `msg ${m.role}`, "data-role": m.role },
      h("div", { class: "msg-role" }, m.role),
      h("div", { class: "msg-text" }, m.content),
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
      field("Max tokens", maxTokens),
      field("Temperature", temperature),
    ),
    field("System prompt", system),
    log,
    prompt,
    h("div", { class: "row spread" }, meta, h("div", { class: "row" }, clear, stop, send)),
  );
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  model.addEventListener("change", () => (chosenModel = model.value));
  stop.addEventListener("click", () => controller?.abort());

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = prompt.value.trim();
    if (!text || !model.value) return;
    conversation.push({ role: "user", content: text });
    prompt.value = "";
    const answer = { role: "assistant", content: "" };
    conversation.push(answer);
    draw();
    const answerText = log.lastElementChild.querySelector(".msg-text");
    const messages = [
      ...(system.value.trim() ? [{ role: "system", content: system.value.trim() }] : []),
      ...conversation.slice(0, -1),
    ];
    controller = new AbortController();
    send.disabled = true;
    stop.hidden = false;
    meta.textContent = "…";
    const started = performance.now();
    let first = null;
    let tokens = 0;
    try {
      const res = await api.raw(
        "POST",
        "/api/playground/chat",
        {
          model: model.value,
          messages,
          stream: true,
          max_tokens: Number(maxTokens.value) || 128,
          temperature: Number(temperature.value),
          stream_options: { include_usage: true },
        },
        controller.signal,
      );
      const node = res.headers.get("x-router-node");
      const parser = createParser({
        onEvent: (ev) => {
          if (ev.data === "[DONE]") return;
          const chunk = JSON.parse(ev.data);
          if (chunk.error) throw new Error(chunk.error.message);
          const delta = chunk.choices?.[0]?.delta?.content ?? "";
          if (delta) {
            first ??= performance.now();
            answer.content += delta;
            answerText.textContent = answer.content;
            log.scrollTop = log.scrollHeight;
          }
          if (chunk.usage) tokens = chunk.usage.completion_tokens;
        },
      });
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
        if (!answer.content) conversation.splice(conversation.length - 2, 2);
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
