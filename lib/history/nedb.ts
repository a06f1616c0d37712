/**
 * What the history and usage services do with the NeDB datastore under
 * moleculer-db's adapter beyond the adapter's calls: read documents straight
 * from its in-memory `_id` index (no trip through its executor queue, so a
 * read never waits behind a write or a compaction), and compact its file a
 * slice at a time, with turns of the event loop between slices, instead of
 * NeDB's own compaction, which serialises every document in one synchronous
 * stretch (seconds at 100,000 records). The history store goes further: it
 * keeps the documents itself and appends to the file (lib/history/nedb-store.ts).
 */
import fs from "node:fs/promises";
import path from "node:path";

/** The parts of @seald-io/nedb's Datastore used here (internal ones included: the versions are pinned). */
export interface NedbStore {
  getAllData(): object[];
  indexes: { _id: { getMatching(id: string): object[] } } & Record<string, unknown>;
  executor: { pushAsync<T>(task: () => Promise<T>, forceQueuing?: boolean): Promise<T> };
  inMemoryOnly: boolean;
  persistence: { filename: string; afterSerialization(s: string): string };
  removeIndexAsync?(field: string): Promise<void>;
  /** Empties the in-memory indexes (NeDB's internal name in 3.x). */
  _resetIndexes(newData?: object[]): void;
  compactDatafileAsync?(): Promise<void>;
}

/** Whether the adapter's `db` is a NeDB datastore with what this module uses. */
export function isNedb(db: unknown): db is NedbStore {
  const d = db as Partial<NedbStore> | undefined;
  return typeof d?.getAllData === "function" && typeof d.executor?.pushAsync === "function" && !!d.indexes?._id;
}

/**
 * Rewrites the datafile with the documents now in memory, as NeDB's
 * compaction does (a temp file `<name>~`, fsync, rename: NeDB recovers from
 * the temp file at load if the rename never happened), `slice` documents per
 * turn of the event loop. It runs in NeDB's executor, so no write lands
 * between the snapshot and the rename; reads of the documents in memory go on.
 * Documents are serialised with JSON.stringify: history documents hold no
 * Date (NeDB's `$$date`) values, and NeDB reads the lines back the same.
 */
export function compactInSlices(
  db: NedbStore,
  slice = 500,
  /** The live documents, when they are not in NeDB's memory (the history store keeps its own). */
  live: () => Iterable<object> = () => db.getAllData(),
): Promise<void> {
  if (db.inMemoryOnly) return Promise.resolve();
  return db.executor.pushAsync(async () => {
    const file = db.persistence.filename;
    const temp = `${file}~`;
    const docs = [...live()];
    const fh = await fs.open(temp, "w", 0o644);
    try {
      for (let i = 0; i < docs.length; i += slice) {
        let text = "";
        for (const d of docs.slice(i, i + slice)) text += `${db.persistence.afterSerialization(JSON.stringify(d))}\n`;
        await fh.write(text);
      }
      // indexes other than `_id` are kept in the file as NeDB keeps them
      for (const [fieldName, ix] of Object.entries(db.indexes)) {
        if (fieldName === "_id") continue;
        const { unique, sparse } = ix as { unique?: boolean; sparse?: boolean };
        await fh.write(
          `${db.persistence.afterSerialization(JSON.stringify({ $$indexCreated: { fieldName, unique, sparse } }))}\n`,
        );
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(temp, file);
    const dir = await fs.open(path.dirname(file), "r");
    await dir.sync().finally(() => dir.close());
  }, true);
}
