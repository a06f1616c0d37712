/**
 * A database of its own for a test file, on the PostgreSQL this machine runs
 * (`.ci/run` starts one when none answers): created with a random name,
 * dropped (connections and all) when the file is done.
 * LLM_ROUTER_TEST_POSTGRES overrides the server (default postgres://postgres@127.0.0.1:5432).
 */
import { randomBytes } from "node:crypto";
import { Client } from "pg";

const SERVER = process.env.LLM_ROUTER_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432";

async function admin<T>(work: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: `${SERVER}/postgres` });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

/** The server's URL (no database): LLM_ROUTER_TEST_POSTGRES, or the machine's. */
export function serverUrl(): string {
  return SERVER;
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = "llmr_test"): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: `${SERVER}/${name}`,
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}
