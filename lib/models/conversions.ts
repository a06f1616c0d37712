/**
 * The router's conversion queue: one conversion at a time (they are heavy on
 * CPU, memory and disk), each a task in the store. A cancelled one removes its
 * scratch files; a failed one keeps the files it fetched for a restart; one cut
 * short by the router stopping stays unfinished in the store, to be queued
 * again when the router starts.
 */
import fs from "node:fs";
import path from "node:path";
import { apiError } from "../openai/errors";
import {
  conversionFiles,
  conversionRoot,
  convertConfig,
  convertRepo,
  requireScript,
  type ConvertResult,
} from "./convert";
import { repoFiles, type Hub } from "./hub";
import { modelFileFor, safeRelativePath } from "./names";
import type { Task, TaskStore } from "./tasks";

export interface ConversionDeps {
  store: TaskStore;
  hub(): Hub;
  /** Adds the catalog entry of a finished conversion. */
  register(task: Task, result: ConvertResult): Promise<void>;
  log: { info(...a: unknown[]): void; warn(...a: unknown[]): void };
}

class Stopping extends Error {}

/** The finished GGUF of a converted model id, under the data dir. */
export function convertedFile(id: string): string {
  return path.join(conversionRoot(), "converted", modelFileFor(id));
}

const workDir = (task: Task) => path.join(conversionRoot(), "convert", safeRelativePath(task.id));

export class ConversionQueue {
  private readonly queue: Task[] = [];
  private running: { task: Task; ac: AbortController; done: Promise<void> } | null = null;
  private stopped = false;

  constructor(private readonly deps: ConversionDeps) {}

  enqueue(task: Task): void {
    if (this.stopped || this.queue.includes(task) || this.running?.task === task) return;
    this.queue.push(task);
    this.pump();
  }

  /** Stops the task's conversion (or takes it off the queue); the caller marks it cancelled. */
  cancel(task: Task): void {
    const i = this.queue.indexOf(task);
    if (i >= 0) this.queue.splice(i, 1);
    if (this.running?.task === task) this.running.ac.abort(apiError(499, "The conversion was cancelled.", "cancelled"));
    else void fs.promises.rm(workDir(task), { recursive: true, force: true }).catch(() => undefined);
  }

  /** Ends the running conversion without marking it (it is taken up again at the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    const r = this.running;
    if (!r) return;
    r.ac.abort(new Stopping("the router is stopping"));
    await r.done;
  }

  private pump(): void {
    if (this.running || this.stopped) return;
    const task = this.queue.shift();
    if (!task) return;
    const ac = new AbortController();
    const done = this.run(task, ac).finally(() => {
      this.running = null;
      this.pump();
    });
    this.running = { task, ac, done };
  }

  private async run(task: Task, ac: AbortController): Promise<void> {
    const { store } = this.deps;
    const repo = task.repo ?? "";
    const work = workDir(task);
    try {
      const cfg = convertConfig();
      const script = requireScript(cfg, repo);
      store.update(task, { status: "downloading", error: null, detail: null, bytes: 0, rate: 0 });
      const files = conversionFiles(await repoFiles(this.deps.hub(), repo, ac.signal));
      if (!files.length) throw apiError(422, `${repo} has no weights to convert.`, "no_gguf");
      this.deps.log.info(`Converting ${repo} to ${task.model} (${files.length} files to fetch)`);
      const result = await convertRepo({
        hub: this.deps.hub(),
        repo,
        files,
        python: cfg.python,
        script,
        outtype: task.outtype ?? cfg.outtype,
        workDir: work,
        outFile: convertedFile(task.model),
        signal: ac.signal,
        onProgress: (p) => {
          if (ac.signal.aborted) return;
          const patch: Partial<Task> = { status: p.stage, detail: p.detail, rate: p.rate, events: task.events + 1 };
          if (p.stage === "downloading") Object.assign(patch, { bytes: p.bytes, total: p.total });
          store.update(task, patch, p.stage === task.status);
        },
      });
      ac.signal.throwIfAborted();
      await this.deps.register(task, result);
      store.update(task, { status: "done", bytes: result.size, total: result.size, rate: 0, detail: null });
      this.deps.log.info(`Converted ${repo} into ${task.model} (${result.size} bytes)`);
    } catch (err) {
      if (ac.signal.reason instanceof Stopping) {
        this.deps.log.warn(`Conversion of ${repo} interrupted: the router is stopping; it resumes at the next start`);
        return;
      }
      if (ac.signal.aborted) {
        await fs.promises.rm(work, { recursive: true, force: true }).catch(() => undefined);
        return; // cancelled: the cancel action marked it
      }
      const message = (err as Error).message;
      this.deps.log.warn(`Conversion of ${repo} failed: ${message}`);
      store.update(task, { status: "failed", error: message, rate: 0 });
    }
  }
}
