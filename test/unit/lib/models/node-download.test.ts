/**
 * A download on an inference node (lib/models/node-download.ts): what is
 * refused before it starts, and the `models.progress` events it sends.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readSlice } from "../../../../lib/models/cluster-source";
import {
  checkDownload,
  runNodeDownload,
  type DownloadParams,
  type NodeDownloadDeps,
} from "../../../../lib/models/node-download";
import { apiError } from "../../../../lib/openai/errors";
import { ggufBytes } from "../../../helpers/standins/hub";

const MODEL = "hf/org/r/m-Q4_K_M";
const params = (over: Partial<DownloadParams> = {}): DownloadParams => ({
  taskId: "task-1",
  modelId: MODEL,
  source: "router-1",
  sha256: null,
  size: 10,
  ...over,
});

describe("checkDownload", () => {
  const none = () => false;

  test("a model name outside the models dir is refused before anything else is asked", () => {
    const has = jest.fn(() => false);
    expect(() => checkDownload(params({ modelId: "../escape" }), has)).toThrow(/'\.\.' segment/);
    expect(has).not.toHaveBeenCalled();
  });

  test("exactly one of url and source; a download from the router needs the size", () => {
    expect(() => checkDownload(params({ source: undefined }), none)).toThrow(/either a url or a source node/);
    expect(() => checkDownload(params({ url: "https://hub/x.gguf" }), none)).toThrow(/either a url or a source/);
    expect(() => checkDownload(params({ size: null }), none)).toThrow(/needs the size/);
    expect(() =>
      checkDownload(params({ source: undefined, url: "https://hub/x.gguf", size: null }), none),
    ).not.toThrow();
  });

  test("a model this node has already is a 409", () => {
    let err: unknown;
    try {
      checkDownload(params(), (id) => id === MODEL);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: 409,
      type: "model_exists",
      message: `The model '${MODEL}' is on this node already.`,
    });
  });
});

describe("runNodeDownload", () => {
  const model = ggufBytes("node-dl", 5);
  const sha = createHash("sha256").update(model).digest("hex");
  let dir: string;
  let src: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "llm-router-node-dl-"));
    src = path.join(dir, "converted.gguf");
    fs.writeFileSync(src, model);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function deps(over: Partial<NodeDownloadDeps> = {}) {
    const events: Array<Record<string, unknown>> = [];
    const calls: unknown[][] = [];
    const d: NodeDownloadDeps = {
      nodeID: "node-a",
      broadcast: (event, payload) => {
        events.push({ event, ...payload });
        return Promise.resolve();
      },
      call: (action, p, opts) => {
        calls.push([action, p, opts]);
        return Promise.resolve(readSlice(src, p.offset as number, p.length as number));
      },
      modelsDir: path.join(dir, "models"),
      manager: { add: jest.fn(() => Promise.resolve()) },
      log: { info: () => undefined, warn: () => undefined },
      onAdded: jest.fn(),
      ...over,
    };
    return { d, events, calls };
  }

  test("from the router: reads the file slice by slice, adds the model, then progress → loading → done", async () => {
    const { d, events, calls } = deps();
    await runNodeDownload(params({ attempt: 2, sha256: sha, size: model.length }), new AbortController().signal, d);
    expect(fs.readFileSync(path.join(dir, "models", `${MODEL}.gguf`))).toEqual(model);
    expect(calls[0]).toEqual([
      "models.readFile",
      { id: MODEL, offset: 0, length: model.length },
      { nodeID: "router-1" },
    ]);
    expect(d.manager.add).toHaveBeenCalledWith(MODEL);
    expect(d.onAdded).toHaveBeenCalledTimes(1);
    const base = { event: "models.progress", taskId: "task-1", attempt: 2, nodeID: "node-a", modelId: MODEL };
    expect(events[0]).toEqual({ ...base, status: "downloading", bytes: 0, total: model.length });
    expect(events.slice(-2)).toEqual([
      { ...base, status: "loading", bytes: model.length, total: model.length },
      { ...base, status: "done", bytes: model.length, total: model.length },
    ]);
  });

  test("a failure is a 'failed' event with the error and its code; it never throws", async () => {
    const add = jest.fn(() => Promise.reject(apiError(422, "not a model", "model_load_failed")));
    const { d, events } = deps({ manager: { add } });
    await runNodeDownload(params({ size: model.length }), new AbortController().signal, d);
    expect(events.at(-1)).toMatchObject({ status: "failed", error: "not a model", code: "model_load_failed" });
    expect(d.onAdded).not.toHaveBeenCalled();
  });

  test("an error without a code, and a cancel through the signal", async () => {
    const { d, events } = deps({ manager: { add: () => Promise.reject(new Error("disk gone")) } });
    await runNodeDownload(params({ size: model.length }), new AbortController().signal, d);
    expect(events.at(-1)).toMatchObject({ status: "failed", error: "disk gone", code: null });
    const ac = new AbortController();
    ac.abort(apiError(499, "The download was cancelled.", "cancelled"));
    const cancelled = deps({ modelsDir: path.join(dir, "models-2") });
    await runNodeDownload(params({ size: model.length }), ac.signal, cancelled.d);
    expect(cancelled.events.at(-1)).toMatchObject({ status: "cancelled", code: "cancelled" });
    expect(cancelled.d.manager.add).not.toHaveBeenCalled();
  });
});
