/**
 * PostgreSQL (LLM_ROUTER_DATABASE_URL): one Sequelize instance (and its
 * connection pool) per process and URL, shared by every service's
 * collection, and the schema brought up to date by the versioned migrations
 * (lib/db/migrations.ts, run by umzug) before anything uses it. Several
 * routers starting at once take turns on an advisory lock: the migrations
 * run once.
 */
import { Sequelize } from "sequelize";
import { SequelizeStorage, Umzug } from "umzug";
import { MIGRATIONS } from "./migrations";

interface Shared {
  db: Sequelize;
  ready: Promise<void>;
  users: number;
}

const shared = new Map<string, Shared>();

/** The advisory lock the migrations run under (any number only this project uses). */
const MIGRATION_LOCK = 0x11_4c_52_01;

/** Applies the migrations not applied yet, one router at a time; what ran, in order. */
export async function migrate(db: Sequelize, log: (message: string) => void = () => undefined): Promise<string[]> {
  return db.transaction(async (t) => {
    // held until this transaction ends: another router's migrate waits here, then finds nothing to do
    await db.query("SELECT pg_advisory_xact_lock(:lock)", { replacements: { lock: MIGRATION_LOCK }, transaction: t });
    const umzug = new Umzug({
      migrations: MIGRATIONS.map((m) => ({ name: m.name, up: () => m.up(db) })),
      context: db,
      storage: new SequelizeStorage({ sequelize: db, tableName: "schema_migrations" }),
      logger: undefined,
    });
    const ran = await umzug.up();
    for (const m of ran) log(`database: migration ${m.name} applied`);
    return ran.map((m) => m.name);
  });
}

/**
 * The process's database for `url`, migrated: each caller releases it
 * (`release`) when it stops; the pool closes with the last.
 */
export async function openDatabase(url: string, log?: (message: string) => void): Promise<Sequelize> {
  let s = shared.get(url);
  if (!s) {
    const db = new Sequelize(url, { logging: false, pool: { max: 10, min: 0, idle: 10_000 } });
    s = { db, users: 0, ready: db.authenticate().then(() => migrate(db, log).then(() => undefined)) };
    shared.set(url, s);
    // a failed start is not kept: the next caller tries again
    s.ready.catch(() => shared.delete(url));
  }
  s.users++;
  try {
    await s.ready;
  } catch (err) {
    s.users--;
    throw err;
  }
  return s.db;
}

/** One user of `url` is done with it; the last closes the pool. */
export async function releaseDatabase(url: string): Promise<void> {
  const s = shared.get(url);
  if (!s || --s.users > 0) return;
  shared.delete(url);
  await s.db.close();
}
