/**
 * The history store the environment picks: PostgreSQL with
 * LLM_ROUTER_DATABASE_URL (the service's moleculer-db adapter is then unused),
 * else the service's adapter: NeDB under an in-memory index, or with
 * MONGO_URI the adapter's collection in MongoDB.
 */
import type { StorageConfig } from "../config";
import { AdapterHistoryStore, type CollectionAdapter } from "./adapter-store";
import { isNedb } from "./nedb";
import { NedbHistoryStore } from "./nedb-store";
import { PgHistoryStore } from "./pg-store";
import type { HistoryStore, StoreOptions } from "./store";

export type StoreKind = "postgres" | "nedb" | "adapter";

/** Which store `openHistoryStore` opens for this storage configuration and adapter. */
export function storeKind(storage: Pick<StorageConfig, "databaseUrl" | "mongoUri">, adapter: unknown): StoreKind {
  if (storage.databaseUrl) return "postgres";
  return !storage.mongoUri && isNedb((adapter as { db?: unknown } | undefined)?.db) ? "nedb" : "adapter";
}

/** Opens the store (the adapter, when one is used, is connected already: moleculer-db's `started`). */
export async function openHistoryStore(
  storage: Pick<StorageConfig, "databaseUrl" | "mongoUri">,
  adapter: unknown,
  opts: StoreOptions,
): Promise<HistoryStore> {
  const kind = storeKind(storage, adapter);
  if (kind === "postgres") return PgHistoryStore.open(storage.databaseUrl!, opts);
  const a = adapter as CollectionAdapter & { db?: unknown };
  if (kind === "nedb" && isNedb(a.db)) return NedbHistoryStore.open(a.db, opts);
  return AdapterHistoryStore.open(a, opts);
}
