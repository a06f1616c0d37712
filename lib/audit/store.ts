/**
 * Where the audit log's entries are kept (services/audit.service.ts): the
 * `audit` collection, one document per entry whose id is its seq, so the
 * store itself refuses a second entry with the same seq. The request body is
 * kept as canonical JSON text (`changes_json`): NeDB and MongoDB refuse
 * field names with a `.` or a leading `$`, which a body may have.
 *   - moleculer-db's adapter (NeDB, MongoDB, memory): the newest entry read,
 *     then the next inserted; routers on one MongoDB that append at the same
 *     moment collide on the id, and the loser (the service) tries again.
 *   - PostgreSQL (the document table, lib/db/document-adapter.ts): the same in
 *     one transaction under an advisory lock every router takes, so appends
 *     from any number of routers are made one at a time.
 */
import type { Sequelize, Transaction } from "sequelize";
import { QueryTypes } from "sequelize";
import { canonicalJson, type AuditEntry } from "./chain";

export interface AuditPageQuery {
  limit: number;
  /** Only entries before this seq (the next page of a newest-first list). */
  beforeSeq?: number;
  /** Only this actor's entries (username, exact). */
  actor?: string;
  /** Only entries whose action holds this text (any case). */
  action?: string;
}

export interface AuditStore {
  /** Reads the newest entry and stores the one `next` makes of it, as one step. */
  append(next: (last: AuditEntry | null) => AuditEntry): Promise<AuditEntry>;
  /** Entries newest first. */
  page(q: AuditPageQuery): Promise<AuditEntry[]>;
  /** Up to `limit` entries after `seq`, oldest first. */
  after(seq: number, limit: number): Promise<AuditEntry[]>;
}

type StoredEntry = Omit<AuditEntry, "changes"> & { changes_json: string };

function toDoc(e: AuditEntry): StoredEntry & { _id: string } {
  const { changes, ...rest } = e;
  return { _id: String(e.seq), ...rest, changes_json: canonicalJson(changes ?? null) };
}

/** An entry as the API shows it; `changes` as stored text when that is not JSON (its hash will not match). */
function fromDoc(d: Record<string, unknown>): AuditEntry {
  let changes: unknown = d.changes_json;
  try {
    changes = JSON.parse(String(d.changes_json));
  } catch {
    // kept as the text
  }
  return {
    seq: d.seq as number,
    ts: d.ts as string,
    actor: (d.actor ?? null) as string | null,
    actor_role: (d.actor_role ?? null) as string | null,
    ip: d.ip as string,
    action: d.action as string,
    target: (d.target ?? null) as string | null,
    status: d.status as number,
    changes,
    prev: d.prev as string,
    hash: d.hash as string,
  };
}

/** A second entry with the same seq (another router appended first). */
export function isDuplicate(err: unknown): boolean {
  const e = err as { code?: unknown; errorType?: unknown; name?: unknown } | null;
  return e?.code === 11000 || e?.errorType === "uniqueViolated" || e?.name === "SequelizeUniqueConstraintError";
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** What this store needs of a moleculer-db adapter. */
export interface DocAdapter {
  find(filters: { query: object; sort?: string[]; limit?: number }): Promise<Array<Record<string, unknown>>>;
  insert(doc: object): Promise<unknown>;
}

export class AdapterAuditStore implements AuditStore {
  constructor(private readonly adapter: DocAdapter) {}

  async append(next: (last: AuditEntry | null) => AuditEntry): Promise<AuditEntry> {
    const [last] = await this.adapter.find({ query: {}, sort: ["-seq"], limit: 1 });
    const entry = next(last ? fromDoc(last) : null);
    await this.adapter.insert(toDoc(entry));
    return entry;
  }

  async page(q: AuditPageQuery): Promise<AuditEntry[]> {
    const query: Record<string, unknown> = {};
    if (q.beforeSeq !== undefined) query.seq = { $lt: q.beforeSeq };
    if (q.actor !== undefined) query.actor = q.actor;
    if (q.action !== undefined) query.action = { $regex: new RegExp(escapeRegExp(q.action), "i") };
    return (await this.adapter.find({ query, sort: ["-seq"], limit: q.limit })).map(fromDoc);
  }

  async after(seq: number, limit: number): Promise<AuditEntry[]> {
    return (await this.adapter.find({ query: { seq: { $gt: seq } }, sort: ["seq"], limit })).map(fromDoc);
  }
}

/** The advisory lock appends take on PostgreSQL (any number only this project uses; migrations take 0x114c5201). */
const APPEND_LOCK = 0x11_4c_52_02;

const SEQ = "(doc->>'seq')::bigint";

export class PgAuditStore implements AuditStore {
  constructor(private readonly db: Sequelize) {}

  private async select(where: string[], order: "ASC" | "DESC", limit: number, replacements: object, t?: Transaction) {
    const rows = await this.db.query<{ doc: Record<string, unknown> }>(
      `SELECT doc FROM audit ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY ${SEQ} ${order} LIMIT :limit`,
      { type: QueryTypes.SELECT, replacements: { ...replacements, limit }, transaction: t },
    );
    return rows.map((r) => fromDoc(r.doc));
  }

  append(next: (last: AuditEntry | null) => AuditEntry): Promise<AuditEntry> {
    return this.db.transaction(async (t) => {
      // held until the transaction ends: another router's append waits here, then reads this entry as its last
      await this.db.query("SELECT pg_advisory_xact_lock(:lock)", {
        replacements: { lock: APPEND_LOCK },
        transaction: t,
      });
      const [last] = await this.select([], "DESC", 1, {}, t);
      const entry = next(last ?? null);
      const { _id, ...doc } = toDoc(entry);
      await this.db.query("INSERT INTO audit (id, doc) VALUES (:id, CAST(:doc AS jsonb))", {
        replacements: { id: _id, doc: JSON.stringify(doc) },
        transaction: t,
      });
      return entry;
    });
  }

  page(q: AuditPageQuery): Promise<AuditEntry[]> {
    const where: string[] = [];
    if (q.beforeSeq !== undefined) where.push(`${SEQ} < :beforeSeq`);
    if (q.actor !== undefined) where.push(`doc->>'actor' = :actor`);
    if (q.action !== undefined) where.push(`strpos(lower(doc->>'action'), lower(:action)) > 0`);
    return this.select(where, "DESC", q.limit, { beforeSeq: q.beforeSeq, actor: q.actor, action: q.action });
  }

  after(seq: number, limit: number): Promise<AuditEntry[]> {
    return this.select([`${SEQ} > :seq`], "ASC", limit, { seq });
  }
}
