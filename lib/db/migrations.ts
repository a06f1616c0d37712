/**
 * The PostgreSQL schema, as versioned migrations (applied in order, each
 * once, by lib/db/postgres.ts; recorded in `schema_migrations`). A change to
 * the schema is a new migration at the end: never edit one that shipped.
 */
import type { Sequelize } from "sequelize";

export interface Migration {
  name: string;
  up(db: Sequelize): Promise<void>;
}

/** The document tables the first migration made (frozen: later tables come with their own migration). */
const FIRST_TABLES = ["users", "api_keys", "node_settings", "models", "model_tasks", "responses", "secrets"];

/** Collections kept as JSON documents (moleculer-db's documents: lib/db/document-adapter.ts). */
export const DOCUMENT_TABLES = [...FIRST_TABLES, "aliases", "audit", "user_limits"];

export const MIGRATIONS: Migration[] = [
  {
    name: "001-documents",
    async up(db) {
      for (const table of FIRST_TABLES) {
        await db.query(`CREATE TABLE IF NOT EXISTS "${table}" (id text PRIMARY KEY, doc jsonb NOT NULL)`);
      }
      // routers starting together each create the first admin: one wins
      await db.query(`CREATE UNIQUE INDEX IF NOT EXISTS users_username ON users ((doc->>'username'))`);
      // stored responses expire by age
      await db.query(`CREATE INDEX IF NOT EXISTS responses_ts ON responses (((doc->>'ts')::double precision))`);
    },
  },
  {
    name: "002-history",
    async up(db) {
      await db.query(`
        CREATE TABLE IF NOT EXISTS history (
          id text PRIMARY KEY,
          ts bigint NOT NULL,
          started_at text NOT NULL,
          finished_at text NOT NULL,
          endpoint text NOT NULL,
          kind text NOT NULL,
          stream boolean NOT NULL,
          model text,
          node_id text,
          node_name text,
          client_ip text NOT NULL,
          api_key_id text,
          api_key_name text,
          user_id text,
          request_json text NOT NULL,
          response_json text NOT NULL,
          status integer NOT NULL,
          error text,
          duration_ms double precision NOT NULL,
          ttft_ms double precision,
          tokens_in integer,
          tokens_out integer,
          retries integer NOT NULL,
          nodes_tried jsonb NOT NULL,
          dropped_tools jsonb
        )`);
      // lists are newest first, filtered by one of these
      await db.query(`CREATE INDEX IF NOT EXISTS history_ts ON history (ts DESC, id DESC)`);
      for (const column of ["model", "node_id", "api_key_id", "status", "kind"]) {
        await db.query(`CREATE INDEX IF NOT EXISTS history_${column}_ts ON history (${column}, ts DESC, id DESC)`);
      }
      // `q` is a substring of either body, any case: trigrams index it (pg_trgm ships with PostgreSQL; without
      // the right to create it, `q` still works, unindexed)
      const [ext] = await db.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'`);
      if (ext.length === 0) return;
      try {
        await db.query(`CREATE EXTENSION IF NOT EXISTS pg_trgm`);
      } catch {
        return;
      }
      await db.query(
        `CREATE INDEX IF NOT EXISTS history_search ON history USING gin ((lower(request_json || E'\\n' || response_json)) gin_trgm_ops)`,
      );
    },
  },
  {
    name: "003-shared-state",
    async up(db) {
      // what routers on one database count together (lib/db/shared-state.ts)
      await db.query(`
        CREATE TABLE IF NOT EXISTS counters (
          scope text NOT NULL,
          key text NOT NULL,
          window_start bigint NOT NULL,
          count integer NOT NULL,
          PRIMARY KEY (scope, key)
        )`);
      await db.query(`CREATE TABLE IF NOT EXISTS revoked_tokens (jti text PRIMARY KEY, exp bigint NOT NULL)`);
    },
  },
  {
    name: "004-history-search-text",
    async up(db) {
      // `q` checks a stored lower-case copy of the bodies: lower() of both bodies for every row a search checks
      // cost twice the check itself (bench/RESULTS.md, history on PostgreSQL). A table made before is rewritten.
      await db.query(
        `ALTER TABLE history ADD COLUMN IF NOT EXISTS search text ` +
          `GENERATED ALWAYS AS (lower(request_json || E'\\n' || response_json)) STORED`,
      );
      // the planner has no statistics of the new column until autovacuum comes by: searches planned blind took seconds
      await db.query(`ANALYZE history`);
      await db.query(`DROP INDEX IF EXISTS history_search`);
      const [trgm] = await db.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'`);
      if (trgm.length === 0) return;
      await db.query(`CREATE INDEX IF NOT EXISTS history_search_text ON history USING gin (search gin_trgm_ops)`);
    },
  },
  {
    name: "005-aliases",
    async up(db) {
      // model aliases and fallback chains (services/aliases.service.ts)
      await db.query(`CREATE TABLE IF NOT EXISTS "aliases" (id text PRIMARY KEY, doc jsonb NOT NULL)`);
    },
  },
  {
    name: "006-history-served-model",
    async up(db) {
      // the model that answered (an alias's, a fallback) when not the one asked for, and the wait for a load
      await db.query(`ALTER TABLE history ADD COLUMN IF NOT EXISTS served_model text`);
      await db.query(`ALTER TABLE history ADD COLUMN IF NOT EXISTS load_ms double precision`);
    },
  },
  {
    name: "007-audit",
    async up(db) {
      // the audit log of admin actions (services/audit.service.ts): a document per entry, its id the entry's seq
      await db.query(`CREATE TABLE IF NOT EXISTS "audit" (id text PRIMARY KEY, doc jsonb NOT NULL)`);
      // the newest entry (every append reads it) and pages by seq
      await db.query(`CREATE UNIQUE INDEX IF NOT EXISTS audit_seq ON audit (((doc->>'seq')::bigint))`);
    },
  },
  {
    name: "008-usage",
    async up(db) {
      // usage as daily roll-ups (services/usage.service.ts, lib/usage/pg-store.ts): kept past history's retention;
      // `id` is the row's key (day, key, user, model, node) as JSON text, whose columns may be null
      await db.query(`
        CREATE TABLE IF NOT EXISTS usage_daily (
          id text PRIMARY KEY,
          day date NOT NULL,
          api_key_id text,
          user_id text,
          model text,
          node_id text,
          requests bigint NOT NULL,
          errors bigint NOT NULL,
          tokens_in bigint NOT NULL,
          tokens_out bigint NOT NULL,
          duration_ms_sum double precision NOT NULL,
          latency_hist jsonb NOT NULL
        )`);
      // reports range over days; a viewer's over their own rows
      await db.query(`CREATE INDEX IF NOT EXISTS usage_daily_day ON usage_daily (day)`);
      await db.query(`CREATE INDEX IF NOT EXISTS usage_daily_user_day ON usage_daily (user_id, day)`);
    },
  },
  {
    name: "009-history-queue",
    async up(db) {
      // a request's wait in the router's queue and how many stood ahead of it (issue 22's priorities)
      await db.query(`ALTER TABLE history ADD COLUMN IF NOT EXISTS queue_ms double precision`);
      await db.query(`ALTER TABLE history ADD COLUMN IF NOT EXISTS queue_position integer`);
    },
  },
  {
    name: "010-quota",
    async up(db) {
      // limits per user (services/apikeys.service.ts) and what routers count together for them (lib/quota/pg-store.ts)
      await db.query(`CREATE TABLE IF NOT EXISTS "user_limits" (id text PRIMARY KEY, doc jsonb NOT NULL)`);
      await db.query(`
        CREATE TABLE IF NOT EXISTS quota_counters (
          subject text NOT NULL,
          period text NOT NULL,
          start bigint NOT NULL,
          used bigint NOT NULL,
          PRIMARY KEY (subject, period)
        )`);
      await db.query(`CREATE TABLE IF NOT EXISTS quota_tat (subject text PRIMARY KEY, tat double precision NOT NULL)`);
      await db.query(`
        CREATE TABLE IF NOT EXISTS quota_leases (
          subject text NOT NULL,
          lease text NOT NULL,
          expires_at bigint NOT NULL,
          PRIMARY KEY (subject, lease)
        )`);
    },
  },
];
