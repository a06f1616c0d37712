import { downloadTargets, newTask, progressPatch, QUIET_MS, settleQuiet } from "../../../../lib/models/tasks";

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

describe("download progress and targets", () => {
  const t = newTask({ kind: "download", model: "m", node: "node-a", status: "downloading" });

  test("a report moves its task; one from an earlier start or for a finished task is ignored", () => {
    expect(progressPatch(t, { status: "downloading", bytes: 10, total: 100, rate: 5 })).toEqual({
      events: 1,
      status: "downloading",
      bytes: 10,
      total: 100,
      rate: 5,
    });
    expect(progressPatch(t, { status: "done", attempt: 2 })).toBeNull();
    expect(progressPatch({ ...t, status: "done" }, { status: "downloading" })).toBeNull();
  });

  test("all online nodes, or the named ones once each; unknown, missing or none online are refused", () => {
    expect(downloadTargets(["a", "b"], { all: true })).toEqual(["a", "b"]);
    expect(downloadTargets(["a", "b"], { nodes: ["b", "b"] })).toEqual(["b"]);
    expect(() => downloadTargets(["a"], { nodes: ["x"] })).toThrow(/No online inference node 'x'/);
    expect(() => downloadTargets(["a"], {})).toThrow(/Say where/);
    expect(() => downloadTargets([], { all: true })).toThrow(/No inference node is online/);
  });
});
