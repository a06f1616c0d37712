/**
 * moleculer-db's adapter for PostgreSQL (moleculer-db-adapter-sequelize),
 * for the collections the services keep as documents (users, API keys, node
 * settings and runtimes, the model catalog, tasks, stored responses): one
 * table per collection, `(id text primary key, doc jsonb)`, created by the
 * migrations (lib/db/migrations.ts), never by `sync`. The services query
 * in the MongoDB/NeDB style they always have (`{owner}`, `{ts: {$lt}}`,
 * `{nodeId: {$exists: true}}`, `$set`): translated here to Sequelize's JSON
 * queries, so documents come back as the plain objects NeDB returns.
 */
import { randomBytes } from "node:crypto";
import type { Service, ServiceBroker } from "moleculer";
import SequelizeDbAdapter from "moleculer-db-adapter-sequelize";
import { DataTypes, Op, Sequelize, type Model, type ModelStatic, type Order, type WhereOptions } from "sequelize";
import { openDatabase, releaseDatabase } from "./postgres";

export type Doc = Record<string, unknown> & { _id?: unknown };
type Query = Record<string, unknown>;

const OPERATORS: Record<string, symbol> = {
  $lt: Op.lt,
  $lte: Op.lte,
  $gt: Op.gt,
  $gte: Op.gte,
  $ne: Op.ne,
  $in: Op.in,
  $nin: Op.notIn,
};

const isOperatorObject = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).some((k) => k.startsWith("$"));

function condition(value: unknown): unknown {
  if (!isOperatorObject(value)) return value;
  const out: Record<symbol, unknown> = {};
  for (const [op, v] of Object.entries(value)) {
    if (op === "$exists") out[v ? Op.ne : Op.is] = null;
    else if (OPERATORS[op]) out[OPERATORS[op]] = v;
    else throw new Error(`the document store does not know the query operator ${op}`);
  }
  return out;
}

/** A MongoDB-style query as a Sequelize `where` over the `doc` column (`_id` is the `id` column). */
export function docWhere(query: Query = {}): WhereOptions {
  const all: WhereOptions[] = [];
  const doc: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    if (key === "$or" || key === "$and") {
      all.push({ [key === "$or" ? Op.or : Op.and]: (value as Query[]).map(docWhere) });
    } else if (key.startsWith("$")) {
      throw new Error(`the document store does not know the query operator ${key}`);
    } else if (key === "_id") {
      all.push({ id: condition(value) });
    } else {
      // `a.b` is a path into the document
      const path = key.split(".");
      let at = doc;
      for (const p of path.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
      at[path[path.length - 1]] = condition(value);
    }
  }
  if (Object.keys(doc).length) all.push({ doc });
  return all.length === 1 ? all[0] : { [Op.and]: all };
}

/** NeDB's ids: 16 characters. */
const newId = () => randomBytes(12).toString("base64url");

interface Row {
  id: string;
  doc: Record<string, unknown>;
}

const toDoc = (row: Model | null): Doc | null => {
  if (!row) return null;
  const { id, doc } = row.get({ plain: true }) as Row;
  return { ...doc, _id: id };
};

interface Filters {
  query?: Query;
  sort?: string | string[];
  limit?: number;
  offset?: number;
}

/** The package's adapter, whose method types (every result an `object`, never null) this one narrows. */
const SequelizeAdapter = SequelizeDbAdapter as unknown as new (...opts: unknown[]) => object;

export class DocumentAdapter extends SequelizeAdapter {
  declare broker: ServiceBroker;
  declare service: Service;
  declare db: Sequelize;
  declare model: ModelStatic<Model>;

  constructor(
    private readonly url: string,
    private readonly table: string,
  ) {
    super(url);
  }

  /** The base adapter wants a model in the service's schema: the table is ours. */
  init(broker: ServiceBroker, service: Service): void {
    this.broker = broker;
    this.service = service;
  }

  async connect(): Promise<void> {
    this.db = await openDatabase(this.url, (m) => this.service.logger.info(m));
    this.model = this.db.define(
      this.table,
      { id: { type: DataTypes.TEXT, primaryKey: true }, doc: { type: DataTypes.JSONB, allowNull: false } },
      { tableName: this.table, timestamps: false },
    );
  }

  disconnect(): Promise<void> {
    return releaseDatabase(this.url);
  }

  private order(sort: string | string[] | undefined): Order | undefined {
    if (!sort) return undefined;
    const fields = typeof sort === "string" ? sort.split(/[ ,]+/).filter(Boolean) : sort;
    return fields.map((f) => {
      const desc = f.startsWith("-");
      const name = desc ? f.slice(1) : f;
      return [name === "_id" ? "id" : Sequelize.json(`doc.${name}`), desc ? "DESC" : "ASC"] as [never, string];
    });
  }

  async find(filters: Filters = {}): Promise<Doc[]> {
    const rows = await this.model.findAll({
      where: docWhere(filters.query),
      order: this.order(filters.sort),
      limit: filters.limit && filters.limit > 0 ? filters.limit : undefined,
      offset: filters.offset && filters.offset > 0 ? filters.offset : undefined,
    });
    return rows.map((r) => toDoc(r)!);
  }

  async findOne(query: Query): Promise<Doc | null> {
    return toDoc(await this.model.findOne({ where: docWhere(query) }));
  }

  async findById(id: unknown): Promise<Doc | null> {
    return toDoc(await this.model.findByPk(String(id)));
  }

  async findByIds(ids: unknown[]): Promise<Doc[]> {
    const rows = await this.model.findAll({ where: { id: { [Op.in]: ids.map(String) } } });
    return rows.map((r) => toDoc(r)!);
  }

  count(filters: Filters = {}): Promise<number> {
    return this.model.count({ where: docWhere(filters.query) });
  }

  private row(entity: Doc): Row {
    const { _id, ...doc } = entity;
    return { id: _id === undefined || _id === null ? newId() : String(_id), doc };
  }

  async insert(entity: Doc): Promise<Doc> {
    const row = this.row(entity);
    await this.model.create({ ...row });
    return { ...row.doc, _id: row.id };
  }

  async insertMany(entities: Doc[]): Promise<Doc[]> {
    const rows = entities.map((e) => this.row(e));
    await this.model.bulkCreate(rows.map((r) => ({ ...r })));
    return rows.map((r) => ({ ...r.doc, _id: r.id }));
  }

  /** `$set` (or a plain object) merged into each matching document; how many changed. */
  async updateMany(query: Query, update: Record<string, unknown>): Promise<number> {
    const { _id: _omit, ...patch } = (update.$set ?? update) as Doc;
    void _omit;
    const merged = Sequelize.literal(`doc || ${this.db.escape(JSON.stringify(patch))}::jsonb`);
    const [changed] = await this.model.update({ doc: merged }, { where: docWhere(query) });
    return changed;
  }

  async updateById(id: unknown, update: Record<string, unknown>): Promise<Doc | null> {
    await this.updateMany({ _id: String(id) }, update);
    return this.findById(id);
  }

  removeMany(query: Query): Promise<number> {
    return this.model.destroy({ where: docWhere(query) });
  }

  async removeById(id: unknown): Promise<Doc | null> {
    const doc = await this.findById(id);
    if (doc) await this.model.destroy({ where: { id: String(id) } });
    return doc;
  }

  clear(): Promise<number> {
    return this.model.destroy({ where: {} });
  }

  entityToObject(entity: Doc): Doc {
    return entity;
  }

  beforeSaveTransformID(entity: Doc): Doc {
    return entity;
  }

  afterRetrieveTransformID(entity: Doc): Doc {
    return entity;
  }
}
