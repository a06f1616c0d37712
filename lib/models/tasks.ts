/**
 * Model tasks (a download to one node, or a conversion on the router), in
 * memory for reads and progress, and written to a collection so that they
 * outlive a restart: failed ones stay listed, unfinished conversions are
 * picked up again. Progress alone is written at most every few seconds.
 */
import { apiError } from "../openai/errors";
import { randomUUID } from "node:crypto";
import type { DbAdapter } from "moleculer-db";

export type TaskKind = "download" | "convert";
export type TaskStatus = "queued" | "downloading" | "converting" | "loading" | "done" | "failed" | "cancelled";

export interface Task {
  id: string;
  kind: TaskKind;
  /** The catalog id (for a conversion: the one it will create). */
  model: string;
  /** The node that does the work (for a conversion: the router). */
  node: string;
  status: TaskStatus;
  bytes: number;
  total: number | null;
  rate: number;
  error: string | null;
  /** Progress events received. */
  events: number;
  /** Starts so far; a restart counts one up, and events of an earlier start are ignored. */
  attempt: number;
  /** Conversions: the repository and the GGUF type. */
  repo?: string;
  outtype?: string;
  /** Conversions: the last line the converter wrote. */
  detail?: string | null;
  created_at: string;
  updated_at: string;
}

export const FINAL: readonly TaskStatus[] = ["done", "failed", "cancelled"];
export const isFinal = (t: Task) => FINAL.includes(t.status);

const PROGRESS_SAVE_MS = 3_000;
/** Finished tasks kept beyond this many are dropped, oldest first, at start. */
const KEEP_FINISHED = 1000;

type Logger = { warn(...args: unknown[]): void };

export function newTask(fields: Pick<Task, "kind" | "model" | "node"> & Partial<Task>): Task {
  const now = new Date().toISOString();
  return {
    id: `task-${randomUUID()}`,
    status: "queued",
    bytes: 0,
    total: null,
    rate: 0,
    error: null,
    events: 0,
    attempt: 1,
    created_at: now,
    updated_at: now,
    ...fields,
  };
}

export class TaskStore {
  private readonly tasks = new Map<string, Task>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: DbAdapter,
    private readonly log: Logger,
  ) {}

  /** Reads the saved tasks (dropping the oldest finished ones beyond a thousand); returns them. */
  async load(): Promise<Task[]> {
    const docs = (await this.db.find({})) as Array<Task & { _id?: unknown }>;
    docs.sort((a, b) => b.created_at.localeCompare(a.created_at));
    let finished = 0;
    for (const { _id: _omit, ...t } of docs) {
      void _omit;
      if (isFinal(t) && ++finished > KEEP_FINISHED) {
        await this.db.removeMany({ id: t.id });
        continue;
      }
      this.tasks.set(t.id, { ...t, attempt: t.attempt ?? 1 });
    }
    return [...this.tasks.values()];
  }

  get(id: string): Task | undefined {
    return this.tasks.get(id);
  }

  /** Newest first. */
  list(): Task[] {
    return [...this.tasks.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  add(task: Task): Task {
    this.tasks.set(task.id, task);
    this.write(() => this.db.insert({ ...task }));
    return task;
  }

  /** Applies `patch`; saved now, or within a few seconds when it is progress only (`progress`). */
  update(task: Task, patch: Partial<Task>, progress = false): Task {
    Object.assign(task, patch, { updated_at: new Date().toISOString() });
    if (progress) {
      if (!this.timers.has(task.id))
        this.timers.set(
          task.id,
          setTimeout(() => this.save(task), PROGRESS_SAVE_MS),
        );
    } else this.save(task);
    return task;
  }

  /** Writes what is pending and waits for every write. */
  async flush(): Promise<void> {
    for (const id of [...this.timers.keys()]) {
      const t = this.tasks.get(id);
      if (t) this.save(t);
    }
    await this.chain;
  }

  private save(task: Task): void {
    const timer = this.timers.get(task.id);
    if (timer) clearTimeout(timer);
    this.timers.delete(task.id);
    const doc = { ...task };
    this.write(() => this.db.updateMany({ id: task.id }, { $set: doc }));
  }

  /** Writes one after the other, in order; a failed write is logged, not thrown. */
  private write(op: () => Promise<unknown>): void {
    this.chain = this.chain.then(op).catch((err: Error) => this.log.warn(`Saving a task failed: ${err.message}`));
  }
}

/** A node reports a download's progress several times a second; this long without a word settles it. */
export const QUIET_MS = 2 * 60_000;

/**
 * What an unfinished download that has been quiet for QUIET_MS becomes (its
 * node went away, or the router restarted and missed the end): done when the
 * node serves the model now, failed (restartable) otherwise; null to wait on.
 */
export function settleQuiet(
  t: Task,
  now: number,
  serves: (nodeId: string, model: string) => boolean,
): Partial<Task> | null {
  if (t.kind !== "download" || isFinal(t) || now - Date.parse(t.updated_at) < QUIET_MS) return null;
  if (serves(t.node, t.model)) return { status: "done", error: null };
  return {
    status: "failed",
    error: `No progress from ${t.node} for ${QUIET_MS / 60_000} minutes (the node or the router restarted?). Restart the task: the node resumes from its partial file.`,
  };
}

/** What a node reports of a download (`models.progress`). */
export interface DownloadProgress {
  attempt?: number;
  status: TaskStatus;
  bytes?: number;
  total?: number | null;
  rate?: number;
  error?: string;
}

/** The change a node's progress report makes to its download task; null to ignore it (finished, or an earlier start). */
export function progressPatch(t: Task, p: DownloadProgress): Partial<Task> | null {
  if (t.kind !== "download" || isFinal(t)) return null;
  if (p.attempt !== undefined && p.attempt !== t.attempt) return null;
  const patch: Partial<Task> = { events: t.events + 1, status: p.status };
  if (p.bytes !== undefined) patch.bytes = p.bytes;
  if (p.total !== undefined) patch.total = p.total;
  if (p.rate !== undefined) patch.rate = p.rate;
  if (p.error) patch.error = p.error;
  return patch;
}

/** The nodes a download goes to: every online inference node, or the ones named (each must be online). */
export function downloadTargets(online: string[], where: { all?: boolean; nodes?: string[] }): string[] {
  let targets: string[];
  if (where.all) targets = online;
  else if (where.nodes?.length) {
    for (const id of where.nodes) {
      if (!online.includes(id)) {
        throw apiError(404, `No online inference node '${id}'.`, "node_not_found", { param: "nodes" });
      }
    }
    targets = [...new Set(where.nodes)];
  } else throw apiError(400, 'Say where: {"all": true} or {"nodes": ["<node id>", …]}.', "missing_target");
  if (!targets.length) throw apiError(409, "No inference node is online.", "no_available_node");
  return targets;
}
