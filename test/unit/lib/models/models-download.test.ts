import { waitFor } from "../../../helpers/wait";
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { downloadFile, type DownloadOptions, type DownloadProgress } from "../../../../lib/models/download";
import { fileUrl } from "../../../../lib/models/hub";
import { ggufBytes, startHubStandIn, type HubStandIn } from "../../../helpers/standins/hub";

const REPO = "org/dl-GGUF";
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
let hub: HubStandIn;
let dest: string;
const model = ggufBytes("dl", 11);
const notGguf = Buffer.alloc(5000, 7);

/** Every file under the models dir, relative. */
function filesIn(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((p) => fs.statSync(path.join(dir, p)).isFile())
    .sort();
}

function options(file: string, extra: Partial<DownloadOptions> = {}): DownloadOptions {
  const bytes = hub.repos.get(REPO)!.get(file)!;
  return {
    url: fileUrl({ baseUrl: hub.url }, REPO, file),
    destDir: dest,
    relPath: `hf/${REPO}/${file}`,
    sha256: sha256(bytes),
    size: bytes.length,
    signal: new AbortController().signal,
    backoffMs: 10,
    ...extra,
  };
}

const fileRequests = () => hub.requests.filter((r) => r.path.includes("/resolve/main/"));

beforeAll(async () => {
  hub = await startHubStandIn();
  hub.repos.set(
    REPO,
    new Map([
      ["model.gguf", model],
      ["bad.gguf", model],
      ["not.gguf", notGguf],
    ]),
  );
  hub.corrupt.add(`${REPO}/bad.gguf`);
});
afterAll(() => hub.close());
beforeEach(() => {
  dest = fs.mkdtempSync(path.join(os.tmpdir(), "llm-router-dl-"));
  hub.requests.length = 0;
});
afterEach(() => {
  hub.bytesPerSecond = null;
  hub.cutNextDownloadAfter = null;
  hub.requiredToken = null;
  fs.rmSync(dest, { recursive: true, force: true });
});

describe("downloadFile", () => {
  test("downloads, verifies and renames the file into place", async () => {
    const got = await downloadFile(options("model.gguf"));
    const target = path.join(dest, "hf", REPO, "model.gguf");
    expect(got).toEqual({ path: target, bytes: model.length, sha256: sha256(model) });
    expect(fs.readFileSync(target).equals(model)).toBe(true);
    expect(filesIn(dest)).toEqual([path.join("hf", REPO, "model.gguf")]);
    expect(fileRequests()).toEqual([{ method: "GET", path: `/${REPO}/resolve/main/model.gguf` }]);
  });

  test("a cut connection resumes with Range and ends with the same bytes", async () => {
    hub.cutNextDownloadAfter = Math.floor(model.length / 2);
    const got = await downloadFile(options("model.gguf"));
    expect(fs.readFileSync(got.path).equals(model)).toBe(true);
    const ranges = fileRequests().map((r) => r.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=[1-9]\d*-$/);
    expect(filesIn(dest)).toEqual([path.join("hf", REPO, "model.gguf")]);
  });

  test("corrupted bytes fail with checksum_mismatch, leaving no file behind", async () => {
    await expect(downloadFile(options("bad.gguf"))).rejects.toMatchObject({ code: 422, type: "checksum_mismatch" });
    expect(filesIn(dest)).toEqual([]);
  });

  test("a file that is not GGUF fails with not_gguf", async () => {
    await expect(downloadFile(options("not.gguf"))).rejects.toMatchObject({ code: 422, type: "not_gguf" });
    await expect(downloadFile(options("not.gguf", { sha256: null, size: null }))).rejects.toMatchObject({
      type: "not_gguf",
    });
    expect(filesIn(dest)).toEqual([]);
  });

  test("a wrong expected size fails with size_mismatch", async () => {
    const opts = options("model.gguf", { size: model.length + 1 });
    await expect(downloadFile(opts)).rejects.toMatchObject({ code: 422, type: "size_mismatch" });
    expect(filesIn(dest)).toEqual([]);
  });

  test("an abort mid-download stops and leaves nothing", async () => {
    hub.bytesPerSecond = 200_000;
    const ac = new AbortController();
    const reason = new Error("cancelled by the test");
    const opts = options("model.gguf", { signal: ac.signal, onProgress: () => ac.abort(reason) });
    await expect(downloadFile(opts)).rejects.toBe(reason);
    expect(filesIn(dest)).toEqual([]);
  });

  test("an abort while waiting to retry leaves nothing", async () => {
    hub.cutNextDownloadAfter = 100_000;
    const ac = new AbortController();
    const done = downloadFile(options("model.gguf", { signal: ac.signal, backoffMs: 60_000 }));
    const part = path.join(dest, "hf", REPO, "model.gguf.part");
    // the connection is cut once the part holds 100 kB; from then on the download waits 60 s to retry
    await waitFor(() => fs.existsSync(part) && fs.statSync(part).size >= 100_000, { what: "the cut" });
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: "AbortError" });
    expect(filesIn(dest)).toEqual([]);
    expect(fileRequests()).toHaveLength(1);
  });

  test("a target outside the models dir is refused", async () => {
    for (const relPath of ["../escape.gguf", "/tmp/escape.gguf", "a/../../escape.gguf", "a\\..\\x.gguf"])
      await expect(downloadFile(options("model.gguf", { relPath }))).rejects.toMatchObject({ code: 400 });
    expect(fileRequests()).toHaveLength(0);
    expect(fs.existsSync(path.join(path.dirname(dest), "escape.gguf"))).toBe(false);
  });

  test("an existing target is refused and left as it is", async () => {
    const target = path.join(dest, "hf", REPO, "model.gguf");
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, "mine");
    await expect(downloadFile(options("model.gguf"))).rejects.toMatchObject({ code: 409, type: "model_exists" });
    expect(fs.readFileSync(target, "utf8")).toBe("mine");
    expect(fileRequests()).toHaveLength(0);
  });

  test("reports progress with growing bytes", async () => {
    hub.bytesPerSecond = 1_000_000;
    const seen: DownloadProgress[] = [];
    await downloadFile(options("model.gguf", { onProgress: (p) => seen.push(p) }));
    expect(seen.length).toBeGreaterThanOrEqual(2);
    // never backwards (the report at the end may repeat the last one's count when the loop stalled before it)
    for (let i = 1; i < seen.length; i++) expect(seen[i].bytes).toBeGreaterThanOrEqual(seen[i - 1].bytes);
    expect(seen[0].bytes).toBeLessThan(model.length);
    expect(seen.at(-1)).toMatchObject({ bytes: model.length, total: model.length });
    expect(seen.some((p) => p.rate > 0)).toBe(true);
  });

  test("a missing file fails at once; a protected one needs the token", async () => {
    const missing = options("model.gguf", { url: fileUrl({ baseUrl: hub.url }, REPO, "gone.gguf") });
    await expect(downloadFile(missing)).rejects.toMatchObject({ code: 404, type: "hub_file_not_found" });
    expect(fileRequests()).toHaveLength(1);
    hub.requiredToken = "hf_secret";
    await expect(downloadFile(options("model.gguf"))).rejects.toMatchObject({ code: 401, type: "hub_unauthorized" });
    await downloadFile(options("model.gguf", { token: "hf_secret" }));
    expect(fileRequests().at(-1)?.authorization).toBe("Bearer hf_secret");
    expect(filesIn(dest)).toEqual([path.join("hf", REPO, "model.gguf")]);
  });

  test("refuses when the disk has too little free space", async () => {
    const opts = options("model.gguf", { minFreeBytes: Number.MAX_SAFE_INTEGER });
    await expect(downloadFile(opts)).rejects.toMatchObject({ code: 507, type: "insufficient_storage" });
    expect(filesIn(dest)).toEqual([]);
  });

  test("retries a 5xx, and starts over when the server ignores Range", async () => {
    const ranges: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      ranges.push(req.headers.range);
      if (ranges.length === 1) {
        res.writeHead(503).end();
      } else if (ranges.length === 2) {
        res.writeHead(200, { "content-length": String(model.length) });
        res.write(model.subarray(0, 50_000), () => setTimeout(() => res.destroy(), 20));
      } else {
        res.writeHead(200, { "content-length": String(model.length) }).end(model);
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/m.gguf`;
      const got = await downloadFile(options("model.gguf", { url }));
      expect(fs.readFileSync(got.path).equals(model)).toBe(true);
      expect(ranges).toEqual([undefined, undefined, "bytes=50000-"]);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test("gives up after the retries, leaving nothing", async () => {
    const opts = options("model.gguf", { url: "http://127.0.0.1:1/m.gguf", retries: 2, backoffMs: 1 });
    await expect(downloadFile(opts)).rejects.toMatchObject({ code: 502, type: "download_failed" });
    expect(filesIn(dest)).toEqual([]);
  });
});
