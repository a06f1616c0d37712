/**
 * moleculer-db with the adapter the environment picks: PostgreSQL when
 * LLM_ROUTER_DATABASE_URL is set (moleculer-db-adapter-sequelize, a table of
 * documents per collection: lib/db/document-adapter.ts), MongoDB when
 * MONGO_URI is set (moleculer-db-adapter-mongo; untested against a server
 * here), else NeDB files in LLM_ROUTER_DATA_DIR (one `<collection>.db` each),
 * or memory when the data dir is `:memory:`. History and the usage roll-ups
 * on PostgreSQL have tables of their own, which their services query
 * themselves (lib/history/pg-store.ts, lib/usage/pg-store.ts): their mixin
 * adapters are then unused memory ones.
 * moleculer-db's generic CRUD actions are switched off: services expose only
 * the actions they define, so nothing on the transporter can read password or
 * key hashes.
 */
import fs from "node:fs";
import path from "node:path";
import type { Service, ServiceSchema } from "moleculer";
import DbService, { type DbAdapter } from "moleculer-db";
import MongoAdapter from "moleculer-db-adapter-mongo";
import { storageConfig } from "../lib/config";
import { DocumentAdapter } from "../lib/db/document-adapter";

const CRUD_ACTIONS = ["find", "count", "list", "create", "insert", "get", "update", "remove"];

/** Collections with a table of their own on PostgreSQL (lib/db/migrations.ts), not a table of documents. */
const OWN_TABLES = ["history", "usage_daily"];

function createAdapter(collection: string): DbAdapter {
  const cfg = storageConfig();
  if (cfg.databaseUrl) {
    if (OWN_TABLES.includes(collection)) return new DbService.MemoryAdapter();
    return new DocumentAdapter(cfg.databaseUrl, collection) as unknown as DbAdapter;
  }
  if (cfg.mongoUri) return new MongoAdapter(cfg.mongoUri);
  if (cfg.dataDir === ":memory:") return new DbService.MemoryAdapter();
  fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  return new DbService.MemoryAdapter({ filename: path.join(cfg.dataDir, `${collection}.db`) });
}

export function dbMixin(collection: string): Partial<ServiceSchema> {
  // `merged` (run once the mixins are merged, when the service is created) is missing from Moleculer's types
  const schema: Partial<ServiceSchema> & { collection: string; merged(schema: { adapter?: DbAdapter }): void } = {
    mixins: [DbService as unknown as Partial<ServiceSchema>],
    collection,
    actions: Object.fromEntries(CRUD_ACTIONS.map((a) => [a, false])),
    // the adapter is chosen when the service is created (moleculer-db's `created` takes it from the schema),
    // so the storage settings are read then, not when the service's file is imported
    merged(schema) {
      schema.adapter = createAdapter(collection);
    },
  };
  return schema;
}

/**
 * A second collection for a service that has one from `dbMixin` already
 * (e.g. the models service's tasks): the same adapter choice, connected now.
 * The caller disconnects it when the service stops.
 */
export async function openCollection(collection: string, service: Service): Promise<DbAdapter> {
  const adapter = createAdapter(collection);
  // adapters read only the collection name and the logger from the service
  adapter.init(service.broker, { schema: { collection }, logger: service.logger } as unknown as Service);
  await adapter.connect();
  return adapter;
}

/** The string form of an entity id (NeDB strings, Mongo ObjectIds). */
export function idOf(doc: { _id?: unknown }): string {
  return String(doc._id);
}
