/**
 * jest's node environment, and one more duty at the end of each test file:
 * a child process that a helper of test/helpers/procs.ts started and that is
 * still running (a test that timed out while it waited on one, say) is killed
 * and named, so that jest exits by itself instead of waiting on it.
 */
const { TestEnvironment } = require("jest-environment-node");

class Environment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.testPath = context.testPath;
  }

  async teardown() {
    /** @type {Map<import("node:child_process").ChildProcess, string> | undefined} */
    const children = this.global.__testChildren;
    const left = [...(children ?? new Map())].filter(([c]) => c.exitCode === null && c.signalCode === null);
    if (left.length > 0) {
      const names = left.map(([c, name]) => `${name} (pid ${c.pid})`).join(", ");
      process.stderr.write(`${this.testPath}: killing what it left running: ${names}\n`);
      await Promise.all(
        left.map(([child]) => new Promise((resolve) => (child.once("exit", resolve), child.kill("SIGKILL")))),
      );
    }
    await super.teardown();
  }
}

module.exports = Environment;
