/** @type {import('jest').Config} */
module.exports = {
  // node's, plus: a child process a test left running is killed at the end of its file (test/helpers/environment.js)
  testEnvironment: "<rootDir>/test/helpers/environment.js",
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
  testMatch: ["<rootDir>/test/**/*.test.ts"],
  // integration and cluster tests start real processes one after another
  maxWorkers: 1,
  testTimeout: 60_000,
};
