/**
 * The model catalog's entries (lib/models/catalog.ts): what registering a
 * repository does, the entries of a hub file and of a conversion, an entry as
 * the API shows it, and the download a node gets for one.
 */
import type { NodeRecord, NodeStatus } from "../../../../lib/cluster/types";
import {
  catalogView,
  convertedEntry,
  downloadRequest,
  hubEntry,
  registration,
  type CatalogDoc,
} from "../../../../lib/models/catalog";
import type { HubFile } from "../../../../lib/models/hub";
import { newTask } from "../../../../lib/models/tasks";
import { heartbeat } from "../../../helpers/candidates";

const f = (p: string, size = 10): HubFile => ({ path: p, size, sha256: null });
const at = new Date("2026-11-28T12:00:00Z");

function node(id: string, status: NodeStatus, models: string[]): NodeRecord {
  const { sentAt: _s, ...rest } = heartbeat(id, models);
  return { ...rest, id, status, registeredAt: "", lastSeen: "" };
}

describe("registration", () => {
  test("the GGUF file asked for, else the one pickGguf takes", () => {
    const files = [f("m-Q8_0.gguf"), f("m-Q4_K_M.gguf"), f("README.md")];
    expect(registration("org/r", files)).toEqual({ gguf: files[1] });
    expect(registration("org/r", files, "Q8_0")).toEqual({ gguf: files[0] });
  });

  test("no GGUF: a conversion when there are weights; 404 for a missing file, 422 for nothing to register", () => {
    expect(registration("org/r", [f("model.safetensors")])).toEqual({ convert: true });
    expect(() => registration("org/r", [f("m-Q4_K_M.gguf")], "Q2_K")).toThrow("org/r has no GGUF file 'Q2_K'.");
    expect(() => registration("org/r", [f("README.md")])).toThrow(
      expect.objectContaining({
        code: 422,
        type: "no_gguf",
        message: "org/r has no GGUF file and no weights to convert.",
      }),
    );
  });
});

describe("entries", () => {
  test("a hub file: its size, hash and URL on the hub (or the mirror)", () => {
    const gguf = { path: "sub/m-Q4_K_M.gguf", size: 123, sha256: "ab".repeat(32) };
    expect(hubEntry({ baseUrl: "https://mirror.test/" }, "hf/org/r/m-Q4_K_M", "org/r", gguf, at)).toEqual({
      id: "hf/org/r/m-Q4_K_M",
      repo: "org/r",
      file: "sub/m-Q4_K_M.gguf",
      size: 123,
      sha256: "ab".repeat(32),
      url: "https://mirror.test/org/r/resolve/main/sub/m-Q4_K_M.gguf",
      source: "hub",
      registered_at: "2026-11-28T12:00:00.000Z",
    });
  });

  test("a conversion: no URL (nodes read it from the router), its file named after the id", () => {
    const task = newTask({ kind: "convert", model: "converted/org/r-f16", node: "router", repo: "org/r" });
    expect(convertedEntry(task, { size: 99, sha256: "cd".repeat(32) }, at)).toEqual({
      id: "converted/org/r-f16",
      repo: "org/r",
      file: "r-f16.gguf",
      size: 99,
      sha256: "cd".repeat(32),
      url: null,
      source: "converted",
      registered_at: "2026-11-28T12:00:00.000Z",
    });
    expect(convertedEntry({ ...task, repo: undefined }, { size: 1, sha256: "" }).repo).toBe("");
  });
});

describe("catalogView", () => {
  const doc: CatalogDoc = {
    _id: "x1",
    id: "hf/org/r/m",
    repo: "org/r",
    file: "m.gguf",
    size: 1,
    sha256: null,
    url: "https://hub/m.gguf",
    registered_at: "t",
  };

  test("without the database id; an entry from before conversions is from the hub; nodes not offline that have it loaded", () => {
    const nodes = [
      node("a", "online", ["hf/org/r/m"]),
      node("b", "initializing", ["hf/org/r/m", "other"]),
      node("c", "offline", ["hf/org/r/m"]),
      node("d", "online", ["other"]),
    ];
    expect(catalogView(doc, nodes)).toEqual({
      source: "hub",
      id: "hf/org/r/m",
      repo: "org/r",
      file: "m.gguf",
      size: 1,
      sha256: null,
      url: "https://hub/m.gguf",
      registered_at: "t",
      nodes: ["a", "b"],
    });
    expect(catalogView({ ...doc, source: "converted", url: null }, []).source).toBe("converted");
  });

  test("the download a node gets: the hub URL, or this router as the source of a converted model", () => {
    const task = { ...newTask({ kind: "download", model: doc.id, node: "node-a" }), attempt: 3 };
    expect(downloadRequest(task, doc, "router-1")).toEqual({
      taskId: task.id,
      attempt: 3,
      modelId: "hf/org/r/m",
      url: "https://hub/m.gguf",
      sha256: null,
      size: 1,
    });
    const converted = downloadRequest(task, { ...doc, source: "converted", url: null }, "router-1");
    expect(converted).toMatchObject({ source: "router-1" });
    expect(converted).not.toHaveProperty("url");
  });
});
