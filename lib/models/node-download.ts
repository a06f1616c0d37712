/**
 * A download on an inference node (`inference.download`): the model file
 * from the hub (or a mirror), or a converted one from the router over the
 * cluster (`models.readFile`), into the models dir, then loaded. Its progress
 * goes out as `models.progress` events, which the router's models service
 * keeps on its task (lib/models/tasks.ts#progressPatch).
 */
import type { Readable } from "node:stream";
import type { ActionParams } from "moleculer";
import { apiError } from "../openai/errors";
import { sliceSource } from "./cluster-source";
import { downloadFile } from "./download";
import { modelFileFor } from "./names";

export interface DownloadParams {
  taskId: string;
  /** Echoed in progress events, so that the router can tell a restarted task's events from the earlier start's. */
  attempt?: number;
  modelId: string;
  /** From the hub (or a mirror)… */
  url?: string;
  /** …or, for a model converted on the router, from that router's node ID (`models.readFile`). */
  source?: string;
  sha256: string | null;
  size: number | null;
}

/** `inference.download`'s parameters (DownloadParams), checked by Moleculer's validator. */
export const DOWNLOAD_PARAMS: ActionParams = {
  taskId: { type: "string", max: 128 },
  attempt: { type: "number", integer: true, min: 1, optional: true },
  modelId: { type: "string", max: 512 },
  url: { type: "url", max: 4096, optional: true },
  source: { type: "string", max: 256, optional: true },
  sha256: { type: "string", length: 64, nullable: true, optional: true },
  size: { type: "number", integer: true, min: 0, nullable: true, optional: true },
};

/** Refuses a download that cannot start (before anything starts): a bad name, not one source, or a model here already. */
export function checkDownload(p: DownloadParams, has: (modelId: string) => boolean): void {
  modelFileFor(p.modelId);
  if (!p.url === !p.source) throw apiError(400, "A download needs either a url or a source node.", "invalid_request");
  if (p.source && typeof p.size !== "number")
    throw apiError(400, "A download from the router needs the size.", "invalid_request");
  if (has(p.modelId)) throw apiError(409, `The model '${p.modelId}' is on this node already.`, "model_exists");
}

export interface NodeDownloadDeps {
  /** This node's ID, in the progress events. */
  nodeID: string;
  /** `broker.broadcast`, for the `models.progress` events. */
  broadcast(event: string, payload: Record<string, unknown>): Promise<unknown>;
  /** `broker.call`, for `models.readFile` on the router a converted model comes from. */
  call(action: string, params: Record<string, unknown>, opts: { nodeID: string }): Promise<Readable>;
  /** This node's HF_TOKEN, if any: it never crosses the transporter. */
  token?: string;
  modelsDir: string;
  /** The node's model manager: adds (and loads) the downloaded file. */
  manager: { add(modelId: string): Promise<unknown> };
  log: { info(msg: string): void; warn(msg: string): void };
  /** The model was added: a heartbeat tells the routers at once. */
  onAdded(): void;
}

/** Runs one download to its end; never throws (a failure, or a cancel through `signal`, is a progress event). */
export async function runNodeDownload(p: DownloadParams, signal: AbortSignal, deps: NodeDownloadDeps): Promise<void> {
  const progress = (status: string, extra: Record<string, unknown> = {}) =>
    deps
      .broadcast("models.progress", {
        taskId: p.taskId,
        attempt: p.attempt,
        nodeID: deps.nodeID,
        modelId: p.modelId,
        status,
        ...extra,
      })
      .catch(() => undefined);
  void progress("downloading", { bytes: 0, total: p.size });
  try {
    const rel = modelFileFor(p.modelId);
    const source = p.source;
    const got = await downloadFile({
      url: p.url,
      source: source
        ? sliceSource(
            (offset, length) => deps.call("models.readFile", { id: p.modelId, offset, length }, { nodeID: source }),
            p.size ?? 0,
          )
        : undefined,
      token: deps.token,
      destDir: deps.modelsDir,
      relPath: rel,
      sha256: p.sha256,
      size: p.size,
      signal,
      onProgress: (x) => void progress("downloading", { ...x }),
    });
    void progress("loading", { bytes: got.bytes, total: got.bytes });
    await deps.manager.add(p.modelId);
    deps.log.info(`Downloaded and loaded the model ${p.modelId}`);
    deps.onAdded();
    void progress("done", { bytes: got.bytes, total: got.bytes });
  } catch (err) {
    const e = err as Error & { type?: string };
    const status = signal.aborted ? "cancelled" : "failed";
    deps.log.warn(`Download of ${p.modelId} ${status}: ${e.message}`);
    void progress(status, { error: e.message, code: e.type ?? null });
  }
}
