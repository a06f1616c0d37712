/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
  testMatch: ["<rootDir>/test/**/*.test.ts"],
  // integration and cluster tests start real processes one after another
  maxWorkers: 1,
  testTimeout: 60_000,
  // a failed test can leave a client reconnecting to a nats-server it killed; CI must end, not wait for it
  forceExit: true,
};
