import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import {
  convertibleWeights,
  fileUrl,
  pickGguf,
  repoFiles,
  searchModels,
  type Hub,
  type HubFile,
} from "../../../../lib/models/hub";
import { catalogId, modelFileFor, parseRepoRef, resolveInside, safeRelativePath } from "../../../../lib/models/names";
import { ggufBytes, startHubStandIn, type HubStandIn } from "../../../helpers/standins/hub";

const HF = "https://huggingface.co";
const MIRROR = "http://127.0.0.1:9999/hf";

/** The status, code and param of what `fn` throws. */
function failure(fn: () => unknown): { code: unknown; type: unknown; param: unknown } {
  try {
    fn();
  } catch (err) {
    const e = err as { code?: unknown; type?: unknown; data?: { param?: unknown } };
    return { code: e.code, type: e.type, param: e.data?.param };
  }
  throw new Error("did not throw");
}

describe("parseRepoRef", () => {
  test.each([
    ["org/repo", { repo: "org/repo" }],
    ["  TheBloke/Llama-2-7B-GGUF/ ", { repo: "TheBloke/Llama-2-7B-GGUF" }],
    ["https://huggingface.co/org/repo", { repo: "org/repo" }],
    ["https://huggingface.co/org/repo/", { repo: "org/repo" }],
    ["https://hf.co/org/repo.v2", { repo: "org/repo.v2" }],
    ["huggingface.co/org/repo/blob/main/m.gguf", { repo: "org/repo", file: "m.gguf" }],
    ["https://huggingface.co/org/repo/tree/main", { repo: "org/repo" }],
    ["https://huggingface.co/org/repo/blob/main/model-Q4_K_M.gguf", { repo: "org/repo", file: "model-Q4_K_M.gguf" }],
    ["https://huggingface.co/org/repo/blob/main/sub/dir/m.gguf", { repo: "org/repo", file: "sub/dir/m.gguf" }],
    ["https://huggingface.co/org/repo/resolve/main/m.gguf?download=true", { repo: "org/repo", file: "m.gguf" }],
    [`${MIRROR}/org/repo`, { repo: "org/repo" }],
    [`${MIRROR}/org/repo/resolve/main/a/m.gguf/`, { repo: "org/repo", file: "a/m.gguf" }],
  ])("%s", (input, want) => {
    expect(parseRepoRef(input, MIRROR)).toEqual(want);
  });

  test.each([
    "",
    "repo-only",
    "org/repo/extra",
    "../etc/passwd",
    "org/..",
    "org/re..po",
    "-org/repo",
    "org/re po",
    "org/repo\0",
    "ftp://huggingface.co/org/repo",
    "https://example.com/org/repo",
    "http://127.0.0.1:9999/other/org/repo",
    "https://huggingface.co/org",
    "https://huggingface.co/org/repo/blob/dev/m.gguf",
    "https://huggingface.co/org/repo/commits/main",
    "https://huggingface.co/org/repo/blob/main",
    "https://huggingface.co/org/repo/blob/main/a/%2e%2e%2fb.gguf",
    "https://huggingface.co/org/repo/blob/main/a%00.gguf",
    "https://huggingface.co/org/repo/blob/main/a%5Cb.gguf",
    "https://huggingface.co/org//repo",
  ])("refuses %j", (input) => {
    expect(failure(() => parseRepoRef(input, MIRROR))).toMatchObject({ code: 400 });
  });

  test("a bad repository names the repo param", () => {
    expect(failure(() => parseRepoRef("nope", HF))).toEqual({ code: 400, type: "invalid_repo", param: "repo" });
  });
});

describe("safeRelativePath", () => {
  test.each(["m.gguf", "hf/org/repo/model-Q4_K_M.gguf", "a/b.c/d_e-f", "..hidden/x", "x..y"])("accepts %s", (p) => {
    expect(safeRelativePath(p)).toBe(p);
  });

  test.each([
    "",
    "../x.gguf",
    "a/../../b",
    "a/./b",
    "a//b",
    "a/",
    "/etc/passwd",
    "..\\x.gguf",
    "a\\b",
    "a\0b",
    "a b",
    "a/é.gguf",
    "a:b",
  ])("refuses %j", (p) => {
    expect(failure(() => safeRelativePath(p))).toEqual({ code: 400, type: "invalid_file", param: "file" });
  });

  test("refuses a segment over 255 characters and a path over 512", () => {
    expect(safeRelativePath("x".repeat(255))).toHaveLength(255);
    expect(failure(() => safeRelativePath("x".repeat(256)))).toMatchObject({ code: 400, param: "file" });
    expect(failure(() => safeRelativePath(`${"a/".repeat(256)}b`))).toMatchObject({ code: 400, param: "file" });
  });
});

describe("catalog ids and paths", () => {
  test("an id is hf/<repo>/<file without .gguf>, its file <id>.gguf", () => {
    expect(catalogId("org/repo", "sub/m-Q4_K_M.gguf")).toBe("hf/org/repo/sub/m-Q4_K_M");
    expect(modelFileFor("hf/org/repo/sub/m-Q4_K_M")).toBe("hf/org/repo/sub/m-Q4_K_M.gguf");
    expect(failure(() => catalogId("org/repo", "weights.bin"))).toMatchObject({ code: 400 });
    expect(failure(() => catalogId("org/../x", "m.gguf"))).toMatchObject({ code: 400 });
    expect(failure(() => modelFileFor("../../etc/passwd"))).toMatchObject({ code: 400 });
  });

  test("resolveInside keeps paths strictly inside the dir", () => {
    const dir = path.join(os.tmpdir(), "models");
    expect(resolveInside(dir, "hf/a/b.gguf")).toBe(path.join(dir, "hf/a/b.gguf"));
    for (const bad of ["", ".", "..", "../x", "a/../../x", "/etc/passwd", "a\0b"])
      expect(failure(() => resolveInside(dir, bad))).toMatchObject({ code: 400, param: "file" });
  });
});

describe("pickGguf", () => {
  const f = (p: string, size: number | null = 100): HubFile => ({ path: p, size, sha256: null });
  const files = [
    f("README.md", 1),
    f("model-Q8_0.gguf", 800),
    f("model-q4_k_m.gguf", 400),
    f("model-Q2_K.gguf", 200),
    f("mmproj-model-f16.gguf", 50),
    f("big/model-Q4_K_M-00001-of-00002.gguf", 10),
    f("big/model-Q4_K_M-00002-of-00002.gguf", 10),
  ];

  test("prefers Q4_K_M, else the smallest; never a shard or a projector unless named", () => {
    expect(pickGguf(files)?.path).toBe("model-q4_k_m.gguf");
    expect(pickGguf(files.filter((x) => !/q4_k_m/i.test(x.path)))?.path).toBe("model-Q2_K.gguf");
    expect(pickGguf([f("a-00001-of-00003.gguf"), f("a-00002-of-00003.gguf")])).toBeNull();
    expect(pickGguf([f("whole-00001-of-00001.gguf")])?.path).toBe("whole-00001-of-00001.gguf");
    expect(pickGguf([f("README.md"), f("model.safetensors")])).toBeNull();
    expect(pickGguf([f("a.gguf", null), f("b.gguf", 5)])?.path).toBe("b.gguf");
  });

  test("takes the named file by path, basename or quantization tag", () => {
    expect(pickGguf(files, "model-Q8_0.gguf")?.path).toBe("model-Q8_0.gguf");
    expect(pickGguf([f("sub/x.gguf")], "x.gguf")?.path).toBe("sub/x.gguf");
    expect(pickGguf(files, "q8_0")?.path).toBe("model-Q8_0.gguf");
    expect(pickGguf(files, "mmproj-model-f16.gguf")?.path).toBe("mmproj-model-f16.gguf");
    expect(pickGguf(files, "missing.gguf")).toBeNull();
    expect(pickGguf(files, "big/model-Q4_K_M-00001-of-00002.gguf")).toBeNull();
  });

  test("convertibleWeights sees safetensors and PyTorch files", () => {
    expect(convertibleWeights([f("model.safetensors")])).toBe(true);
    expect(convertibleWeights([f("pytorch_model.bin")])).toBe(true);
    expect(convertibleWeights([f("x.pth")])).toBe(true);
    expect(convertibleWeights([f("README.md"), f("m.gguf")])).toBe(false);
  });
});

describe("Hub client against the stand-in", () => {
  let standIn: HubStandIn;
  let hub: Hub;
  const model = ggufBytes("hub-test", 7);

  beforeAll(async () => {
    standIn = await startHubStandIn();
    hub = { baseUrl: `${standIn.url}/` };
    standIn.repos.set(
      "org/tiny-GGUF",
      new Map([
        ["README.md", Buffer.from("# tiny\n")],
        ["tiny-Q4_K_M.gguf", model],
      ]),
    );
    standIn.repos.set("org/weights-only", new Map([["model.safetensors", Buffer.from("not really")]]));
  });
  afterAll(() => standIn.close());
  afterEach(() => {
    standIn.requiredToken = null;
  });

  test("lists files with sizes and the SHA-256 of LFS files", async () => {
    const files = await repoFiles(hub, "org/tiny-GGUF");
    const sha = createHash("sha256").update(model).digest("hex");
    expect(files).toEqual([
      { path: "README.md", size: 7, sha256: null },
      { path: "tiny-Q4_K_M.gguf", size: model.length, sha256: sha },
    ]);
    expect(standIn.requests.at(-1)?.path).toBe("/api/models/org/tiny-GGUF?blobs=true");
    expect(pickGguf(files)?.path).toBe("tiny-Q4_K_M.gguf");
    expect(convertibleWeights(await repoFiles(hub, "org/weights-only"))).toBe(true);
  });

  test("an unknown repository is a 404 hub_repo_not_found", async () => {
    await expect(repoFiles(hub, "org/missing")).rejects.toMatchObject({ code: 404, type: "hub_repo_not_found" });
  });

  test("a token-protected hub answers 401 hub_unauthorized unless the token is sent", async () => {
    standIn.requiredToken = "hf_secret";
    await expect(repoFiles(hub, "org/tiny-GGUF")).rejects.toMatchObject({
      code: 401,
      type: "hub_unauthorized",
      message: expect.stringMatching(/HF_TOKEN/),
    });
    const files = await repoFiles({ ...hub, token: "hf_secret" }, "org/tiny-GGUF");
    expect(files).toHaveLength(2);
    expect(standIn.requests.at(-1)?.authorization).toBe("Bearer hf_secret");
  });

  test("an unreachable hub is a 502 hub_unreachable", async () => {
    await expect(repoFiles({ baseUrl: "http://127.0.0.1:1" }, "org/x")).rejects.toMatchObject({
      code: 502,
      type: "hub_unreachable",
    });
  });

  test("searches GGUF repositories", async () => {
    const found = await searchModels(hub, "tiny", 5);
    expect(found).toEqual([{ id: "org/tiny-GGUF", downloads: 20, likes: 2, updated: "2025-01-02T00:00:00.000Z" }]);
    expect(standIn.requests.at(-1)?.path).toBe("/api/models?search=tiny&filter=gguf&limit=5");
    expect(await searchModels(hub, "weights")).toEqual([]);
  });

  test("file URLs are {base}/{repo}/resolve/main/{path}, segments encoded", () => {
    expect(fileUrl(hub, "org/tiny-GGUF", "sub/a b.gguf")).toBe(
      `${standIn.url}/org/tiny-GGUF/resolve/main/sub/a%20b.gguf`,
    );
  });
});
