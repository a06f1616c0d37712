/**
 * The model catalog's entries (services/models.service.ts): what registering
 * a hub repository does (a GGUF to register, or a conversion), the entries of
 * a hub file and of a finished conversion, an entry as the API shows it, and
 * the `inference.download` a node gets for one. Pure.
 */
import type { NodeRecord } from "../cluster/types";
import { apiError } from "../openai/errors";
import type { ConvertResult } from "./convert";
import { convertibleWeights, fileUrl, pickGguf, type Hub, type HubFile } from "./hub";
import { safeRelativePath } from "./names";
import type { DownloadParams } from "./node-download";
import type { Task } from "./tasks";

export interface CatalogDoc {
  _id?: unknown;
  id: string;
  repo: string;
  file: string;
  size: number | null;
  sha256: string | null;
  /** The hub URL; null for a converted model, which nodes read from the router. */
  url: string | null;
  /** Absent in entries from before conversions: "hub". */
  source?: "hub" | "converted";
  registered_at: string;
}

export type CatalogView = Omit<CatalogDoc, "_id"> & { source: "hub" | "converted"; nodes: string[] };

/**
 * What registering `repo` (with its `files`) does: the GGUF file to register
 * (`wanted`, else the one pickGguf takes), or a conversion when the repository
 * has none but weights to convert. 404 when the file wanted is not there, 422
 * when there is nothing to register.
 */
export function registration(repo: string, files: HubFile[], wanted?: string): { gguf: HubFile } | { convert: true } {
  const gguf = pickGguf(files, wanted);
  if (gguf) return { gguf };
  if (wanted) throw apiError(404, `${repo} has no GGUF file '${wanted}'.`, "file_not_found", { param: "file" });
  if (!convertibleWeights(files))
    throw apiError(422, `${repo} has no GGUF file and no weights to convert.`, "no_gguf", { param: "repo" });
  return { convert: true };
}

/** The entry of a hub repository's GGUF file `gguf`, as `id`. */
export function hubEntry(hub: Hub, id: string, repo: string, gguf: HubFile, now = new Date()): CatalogDoc {
  return {
    id,
    repo,
    file: gguf.path,
    size: gguf.size,
    sha256: gguf.sha256,
    url: fileUrl(hub, repo, gguf.path),
    source: "hub",
    registered_at: now.toISOString(),
  };
}

/** The entry of a finished conversion (its file stays on the router; nodes read it from there). */
export function convertedEntry(
  task: Task,
  result: Pick<ConvertResult, "size" | "sha256">,
  now = new Date(),
): CatalogDoc {
  return {
    id: task.model,
    repo: task.repo ?? "",
    file: safeRelativePath(`${task.model.split("/").pop()}.gguf`),
    size: result.size,
    sha256: result.sha256,
    url: null,
    source: "converted",
    registered_at: now.toISOString(),
  };
}

/** An entry as the API shows it: with the nodes (not offline) that have it loaded. */
export function catalogView(d: CatalogDoc, nodes: NodeRecord[]): CatalogView {
  const loadedOn = nodes.filter((n) => n.status !== "offline" && n.models.some((m) => m.id === d.id)).map((n) => n.id);
  const { _id: _omit, ...rest } = d;
  void _omit;
  return { source: "hub", ...rest, nodes: loadedOn };
}

/** The `inference.download` a node gets for `task`: from the hub, or a converted model from this router (`routerNodeID`). */
export function downloadRequest(
  task: Task,
  doc: CatalogDoc,
  routerNodeID: string,
): Omit<DownloadParams, "url"> & { url?: string | null } {
  const from = doc.source === "converted" ? { source: routerNodeID } : { url: doc.url };
  return { taskId: task.id, attempt: task.attempt, modelId: doc.id, ...from, sha256: doc.sha256, size: doc.size };
}
