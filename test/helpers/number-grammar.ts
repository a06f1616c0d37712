/**
 * Prints, as JSON, the GBNF node-llama-cpp makes for an integer and a number
 * after lib/inference/llama-tools.ts tightened it. Run in its own process
 * (node-llama-cpp is ESM-only; jest runs CJS):
 *   node --import tsx test/helpers/number-grammar.ts
 */
import { tightenNumberGrammar } from "../../lib/inference/llama-tools";

(async () => {
  await tightenNumberGrammar();
  const lib = await import("node-llama-cpp");
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
  const integer = (await llama.createGrammarForJsonSchema({ type: "integer" })).grammar;
  const number = (await llama.createGrammarForJsonSchema({ type: "number" })).grammar;
  console.log(JSON.stringify({ integer, number }));
  await llama.dispose();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
