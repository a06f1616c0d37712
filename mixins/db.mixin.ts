/**
 * moleculer-db with the adapter the environment picks: MongoDB when MONGO_URI
 * is set (moleculer-db-adapter-mongo), else NeDB files in LLM_ROUTER_DATA_DIR
 * (one `<collection>.db` each), or memory when the data dir is `:memory:`.
 * moleculer-db's generic CRUD actions are switched off: services expose only
 * the actions they define, so nothing on the transporter can read password or
 * key hashes.
 */
import fs from "node:fs";
import path from "node:path";
import type { ServiceSchema } from "moleculer";
import DbService, { type DbAdapter } from "moleculer-db";
import MongoAdapter from "moleculer-db-adapter-mongo";
import { storageConfig } from "../lib/config";

const CRUD_ACTIONS = ["find", "count", "list", "create", "insert", "get", "update", "remove"];

export function dbMixin(collection: string): Partial<ServiceSchema> {
  const cfg = storageConfig();
  let adapter: DbAdapter;
  if (cfg.mongoUri) {
    adapter = new MongoAdapter(cfg.mongoUri);
  } else if (cfg.dataDir === ":memory:") {
    adapter = new DbService.MemoryAdapter();
  } else {
    fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
    adapter = new DbService.MemoryAdapter({ filename: path.join(cfg.dataDir, `${collection}.db`) });
  }
  const schema: Partial<ServiceSchema> & { adapter: DbAdapter; collection: string } = {
    mixins: [DbService as unknown as Partial<ServiceSchema>],
    adapter,
    collection,
    actions: Object.fromEntries(CRUD_ACTIONS.map((a) => [a, false])),
  };
  return schema;
}

/** The string form of an entity id (NeDB strings, Mongo ObjectIds). */
export function idOf(doc: { _id?: unknown }): string {
  return String(doc._id);
}
