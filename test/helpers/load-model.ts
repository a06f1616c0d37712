/**
 * Loads a GGUF with the real node-llama-cpp and prints what a test checks, as
 * JSON. Run in its own process (node-llama-cpp is ESM-only; jest runs CJS).
 *   node --import tsx test/helpers/load-model.ts FILE
 */
(async () => {
  const file = process.argv[2];
  const lib = await import("node-llama-cpp");
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({ contextSize: 512, threads: 1 });
  const wrapper = lib.resolveChatWrapper(model);
  const session = new lib.LlamaChatSession({ contextSequence: context.getSequence(), chatWrapper: wrapper });
  const text = await session.prompt("Hello", { maxTokens: 24, temperature: 0 });
  const roundTrip = model.detokenize(model.tokenize("héllo ✓"));
  const embedding = await (await model.createEmbeddingContext({ threads: 1 })).getEmbeddingFor("hi");
  console.log(
    JSON.stringify({
      name: model.fileInfo.metadata.general.name,
      architecture: model.fileInfo.metadata.general.architecture,
      trainContextSize: model.trainContextSize,
      chatWrapper: wrapper.wrapperName,
      text,
      roundTrip,
      embeddingLength: embedding.vector.length,
    }),
  );
  await llama.dispose();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
