/** @type {import('jest').Config} */
const shared = {
  // node's, plus: a child process a test left running is killed at the end of its file (test/helpers/environment.js)
  testEnvironment: "<rootDir>/test/helpers/environment.js",
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
};

/**
 * Two tiers (docs/development.md): `unit` (test/unit mirrors lib/, plus the
 * in-process cluster) runs a worker per core; `integration` (real processes,
 * NATS, Chromium) two files at a time (every test starts its own processes on
 * free ports). `npm test` runs both, each with its worker count;
 * `npx jest PATH` runs one file.
 */
module.exports = {
  projects: [
    {
      ...shared,
      displayName: "unit",
      testMatch: ["<rootDir>/test/unit/**/*.test.ts", "<rootDir>/test/inprocess/**/*.test.ts"],
    },
    {
      ...shared,
      displayName: "integration",
      testMatch: ["<rootDir>/test/integration/**/*.test.ts", "<rootDir>/test/browser/**/*.test.ts"],
    },
    {
      // the images built and run on a Docker engine: npm run test:docker (test/docker/run.sh), not npm test
      ...shared,
      displayName: "docker",
      testMatch: ["<rootDir>/test/docker/**/*.test.ts"],
    },
  ],
  // integration and cluster tests start real processes: one file at a time unless a tier's script says otherwise
  // (npm run test:integration runs two)
  maxWorkers: 1,
  testTimeout: 60_000,
};
