/**
 * The records the history benchmarks store: realistic, seeded (every run the
 * same), written through the service or straight into a NeDB file.
 */
import fs from "node:fs";
import type { HistoryRecord } from "../lib/history/record";
import { searchText } from "../lib/history/query";

export const DAY = 86_400_000;
/** Records per flush while filling: the service's own batch size. */
export const CHUNK = 200;

export const MODELS = ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct", "phi-3-mini"];
export const NODES = ["gpu-a-1", "gpu-a-2", "gpu-b-1", "cpu-1"];
/** A word in about 0.5 % of prompts, for the text search. */
export const RARE_WORD = "invoice";
const WORDS = (
  "the a of to and in is it you that for on with as are this be at have from or one had by word but not what all " +
  "were we when your can said there use an each which she do how their if will up other about out many then them " +
  "these so some her would make like him into time has look two more write go see number no way could people my " +
  "than first water been call who oil its now find long down day did get come made may part summary translate " +
  "explain code python function error list table weather recipe email draft review"
).split(" ");

/** A small seeded PRNG (mulberry32), so every run stores the same records. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Records as the api would send them: ts spread over the last `spanMs` before `now`. */
export function* makeRecords(
  n: number,
  now: number,
  spanMs = 7 * DAY - 3_600_000,
  seed = 42,
): Generator<HistoryRecord> {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const sentence = (min: number, max: number) =>
    Array.from({ length: min + Math.floor(r() * (max - min)) }, () => pick(WORDS)).join(" ");
  const hex = (len: number) => Array.from({ length: len }, () => Math.floor(r() * 16).toString(16)).join("");
  for (let i = 0; i < n; i++) {
    const ts = Math.floor(now - r() * spanMs);
    const model = r() < 0.4 ? MODELS[0] : pick(MODELS);
    const node = pick(NODES);
    const u = r();
    const status =
      u < 0.94 ? 200 : u < 0.96 ? 400 : u < 0.97 ? 404 : u < 0.98 ? 429 : u < 0.99 ? 499 : pick([500, 502, 503]);
    const k = r();
    const kind = k < 0.8 ? "chat" : k < 0.9 ? "completion" : k < 0.97 ? "embedding" : "legacy";
    const stream = kind !== "embedding" && r() < 0.5;
    let prompt = sentence(20, 50);
    if (r() < 0.005) prompt += ` please check the ${RARE_WORD} total`;
    const tokensIn = 20 + Math.floor(r() * 200);
    const tokensOut = status === 200 && kind !== "embedding" ? 10 + Math.floor(r() * 300) : null;
    const duration = status === 200 ? Math.round((50 + r() * 3000) * 10) / 10 : Math.round(r() * 200 * 10) / 10;
    const reqId = `req-${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
    const request_body =
      kind === "embedding"
        ? { model, input: prompt }
        : kind === "completion"
          ? { model, prompt, max_tokens: 256, temperature: 0.7, stream }
          : {
              model,
              messages: [
                { role: "system", content: "You are a helpful assistant." },
                { role: "user", content: prompt },
              ],
              max_tokens: 256,
              temperature: 0.7,
              stream,
            };
    const usage = {
      prompt_tokens: tokensIn,
      completion_tokens: tokensOut ?? 0,
      total_tokens: tokensIn + (tokensOut ?? 0),
    };
    const response_body =
      status !== 200
        ? null
        : kind === "embedding"
          ? { object: "list", embeddings: 1, usage }
          : stream
            ? { text: sentence(30, 70), finish_reason: "stop", usage }
            : {
                id: `chatcmpl-${hex(32)}`,
                object: "chat.completion",
                created: Math.floor(ts / 1000),
                model,
                choices: [
                  { index: 0, message: { role: "assistant", content: sentence(30, 70) }, finish_reason: "stop" },
                ],
                usage,
              };
    const tried = status === 502 || status === 503 ? [node, pick(NODES)] : [node];
    yield {
      id: reqId,
      ts,
      started_at: new Date(ts).toISOString(),
      finished_at: new Date(ts + duration).toISOString(),
      endpoint:
        kind === "embedding" ? "/v1/embeddings" : kind === "completion" ? "/v1/completions" : "/v1/chat/completions",
      kind,
      stream,
      model,
      node_id: status === 404 ? null : node,
      node_name: status === 404 ? null : node,
      client_ip: `10.0.${Math.floor(r() * 4)}.${1 + Math.floor(r() * 250)}`,
      api_key_id: `key-${Math.floor(r() * 20)}`,
      api_key_name: `team-${Math.floor(r() * 20)}`,
      user_id: `user-${Math.floor(r() * 10)}`,
      request_body,
      response_body,
      status,
      error: status === 200 ? null : `upstream answered ${status}`,
      duration_ms: duration,
      ttft_ms: status === 200 ? Math.round(r() * 300 * 10) / 10 : null,
      tokens_in: tokensIn,
      tokens_out: tokensOut,
      retries: tried.length - 1,
      nodes_tried: tried,
    };
  }
}

/** The next `n` of a generator's values. */
export function take<T>(it: Iterator<T>, n: number): T[] {
  const out: T[] = [];
  while (out.length < n) {
    const r = it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

/**
 * Writes `n` records as a NeDB file, one JSON line each, as the history service
 * stores them (with `search_text` and an `_id`): a full store without the wait.
 */
export function writeNedbFile(file: string, n: number, now: number): void {
  const fd = fs.openSync(file, "w");
  try {
    const it = makeRecords(n, now);
    for (let i = 0; i < n; i += CHUNK) {
      const lines = take(it, CHUNK).map((rec, j) =>
        JSON.stringify({
          ...rec,
          search_text: searchText(rec.request_body, rec.response_body),
          _id: `b${(i + j).toString(36).padStart(15, "0")}`,
        }),
      );
      fs.writeSync(fd, `${lines.join("\n")}\n`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The list filters timed, as query-string values. */
export function queries(now: number): Array<[string, Record<string, string>]> {
  const iso = (t: number) => new Date(t).toISOString();
  return [
    ["no filter, page 1", {}],
    ["model", { model: MODELS[1] }],
    ["model + status=error", { model: MODELS[1], status: "error" }],
    ["node + kind", { node: NODES[2], kind: "chat" }],
    ["time range (1 day of 7)", { from: iso(now - 3 * DAY), to: iso(now - 2 * DAY) }],
    ["no filter, page 50", { page: "50" }],
    [`text search q=${RARE_WORD}`, { q: RARE_WORD }],
    ["model + range + q, per_page 200", { model: MODELS[0], from: iso(now - 5 * DAY), q: "weather", per_page: "200" }],
  ];
}
