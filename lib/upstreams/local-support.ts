/**
 * What a local node can serve, checked before a request is sent to one: the
 * parameters it honours (lib/openai/chat-params.ts), text content only, and
 * JSON schemas its grammar expresses exactly (lib/openai/json-schema.ts,
 * which also rewrites them into that form, in the job the node gets). Every
 * refusal is a 400 naming the parameter; nothing is silently dropped.
 */
import type { ChatJob } from "../inference/types";
import { refuseOnNode } from "../openai/chat-params";
import { badRequest } from "../openai/errors";
import { grammarSchema } from "../openai/json-schema";
import type { ChatBody } from "../openai/schemas";
import type { Call } from "./types";

/** Calls checked already (a retry on another node is not checked twice). */
const checked = new WeakSet<Call>();

/** Throws the 400 a local node would give for `call`; rewrites the job's schemas into the grammar's form. */
export function checkLocalSupport(call: Call): void {
  if (call.op === "embeddings" || call.op === "rerank" || checked.has(call)) return;
  refuseOnNode(call.body as Record<string, unknown>, call.op);
  if (call.op !== "chat") return;
  refuseImages(call.body as ChatBody);
  const job = call.job as ChatJob;
  if (job.tools) {
    // a function's arguments are an object: empty parameters mean it takes none
    job.tools = job.tools.map((t, i) => ({
      ...t,
      parameters: grammarSchema(
        t.parameters && Object.keys(t.parameters).length ? t.parameters : { type: "object" },
        `tools[${i}].function.parameters`,
      ),
    }));
  }
  if (job.responseFormat?.type === "json_schema") {
    job.responseFormat = {
      ...job.responseFormat,
      schema: grammarSchema(job.responseFormat.schema, "response_format.json_schema.schema"),
    };
  }
  // node-llama-cpp constrains an answer either to a grammar or to its function-call syntax, not both at once
  const mayCall = job.tools && job.toolChoice !== "none";
  if (job.responseFormat && mayCall && (job.toolChoice ?? "auto") === "auto") {
    throw badRequest(
      "Local models cannot combine response_format with tools the model may or may not call; send tool_choice 'required', a named function, or 'none'.",
      "response_format",
      "unsupported_parameter",
    );
  }
  checked.add(call);
}

function refuseImages(body: ChatBody): void {
  body.messages.forEach((m, i) => {
    if (!Array.isArray(m.content)) return;
    const j = m.content.findIndex((p) => p.type !== "text");
    if (j >= 0) {
      throw badRequest(
        `Content parts of type '${m.content[j].type}' are not supported by local models; send text.`,
        `messages[${i}].content[${j}].type`,
        "unsupported_content",
      );
    }
  });
}
