#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so `npx llm-router …` works without a build step.
require("tsx/cjs");
require("./main.ts");
