import { newTask, QUIET_MS, settleQuiet } from "../../lib/models/tasks";

describe("downloads gone quiet", () => {
  const at = Date.parse("2026-11-28T12:00:00Z");
  const task = (status: "downloading" | "done" | "queued", kind: "download" | "convert" = "download") =>
    newTask({ kind, model: "hf/org/r/m.gguf", node: "node-a", status, updated_at: new Date(at).toISOString() });
  const serves = (yes: boolean) => () => yes;

  test("wait while the node still reports, and for finished tasks and conversions", () => {
    expect(settleQuiet(task("downloading"), at + QUIET_MS - 1, serves(false))).toBeNull();
    expect(settleQuiet(task("done"), at + QUIET_MS * 10, serves(false))).toBeNull();
    expect(settleQuiet(task("queued", "convert"), at + QUIET_MS * 10, serves(false))).toBeNull();
  });

  test("done when the node serves the model now; failed with a reason to restart otherwise", () => {
    expect(settleQuiet(task("downloading"), at + QUIET_MS, serves(true))).toEqual({ status: "done", error: null });
    const failed = settleQuiet(task("queued"), at + QUIET_MS, serves(false));
    expect(failed?.status).toBe("failed");
    expect(failed?.error).toMatch(/No progress from node-a .* Restart the task/);
  });
});
