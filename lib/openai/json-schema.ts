/**
 * A client's JSON schema (response_format json_schema, a tool's parameters),
 * made into what a local model's constrained generation obeys. node-llama-cpp
 * 3.21.1 compiles a schema into a GBNF grammar from a subset of JSON Schema
 * (its utils/gbnfJson/types.d.ts): type, const, enum, oneOf, $ref to the root's
 * $defs, string lengths and three formats, properties / additionalProperties /
 * counts, items / prefixItems / counts. Anything else it ignores, and the model
 * could then write what the client's schema forbids: so a keyword outside the
 * subset is refused with a 400 naming it, never silently left unconstrained.
 * What the subset can say is rewritten into it (anyOf as oneOf, type lists with
 * keywords as a oneOf, draft-07 definitions as $defs, an "any" schema as a union
 * of every JSON type). The grammar may admit less than the schema (it writes
 * every listed property and, unless additionalProperties says so, no other; a
 * schema without `type` gets the types its keywords constrain), never more, but
 * for node-llama-cpp's oneOf, a union: a value matching two branches passes.
 * Refused too: recursive schemas (a model could nest without end), and counts
 * over MAX_SCHEMA_COUNT (llama.cpp does not compile a repetition of 1000 to 2000
 * in the root rule, and does not enforce one over 2000).
 */
import { badRequest } from "./errors";

export const MAX_SCHEMA_DEPTH = 32; // nesting levels below the root
export const MAX_SCHEMA_NODES = 2000; // subschemas in one schema
/** enum and const values in one schema (OpenAI's structured outputs allow 1,000): bounds compile and sampling time. */
export const MAX_SCHEMA_VALUES = 1000;
export const MAX_SCHEMA_COUNT = 999; // minLength, maxItems, … (llama.cpp's grammar repetitions)

/** A schema in the subset above, ready for node-llama-cpp. */
export type GrammarSchema = Record<string, unknown>;

type Obj = Record<string, unknown>;
interface Ref {
  owner: string | null; // the definition it is in; null for the root's tree
  target: string;
  param: string;
}
interface Ctx {
  root: string;
  nodes: number;
  /** enum and const values so far (each is an alternative of the grammar). */
  values: number;
  defs: Map<string, string>; // name → the root keyword defining it ($defs or definitions)
  refs: Ref[];
  owner: string | null;
}

const PRIMITIVES = ["string", "number", "integer", "boolean", "null"];
const TYPES = [...PRIMITIVES, "object", "array"];
const TYPED: Record<string, readonly string[]> = {
  string: ["minLength", "maxLength", "format"],
  object: ["properties", "required", "additionalProperties", "minProperties", "maxProperties"],
  array: ["prefixItems", "items", "minItems", "maxItems"],
};
const TYPED_KEYWORDS = Object.values(TYPED).flat();
const GENERAL = ["type", "description", "const", "enum", "oneOf", "anyOf", "$ref"];
const SUPPORTED = [...GENERAL, ...TYPED_KEYWORDS, "$defs"].join(", ");
/** Keywords that only annotate (discriminator: OpenAPI's, pydantic writes it next to oneOf). */
const ANNOTATIONS = new Set([
  ...["title", "default", "examples", "$comment", "$schema", "$id"],
  ...["deprecated", "readOnly", "writeOnly", "discriminator"],
]);
const FORMATS = ["date-time", "time", "date"];
const COUNTS = [
  ["minLength", "maxLength"],
  ["minItems", "maxItems"],
  ["minProperties", "maxProperties"],
] as const;

const invalid = (message: string, param: string) => badRequest(message, param, "invalid_schema");
const refuse = (message: string, param: string) => badRequest(message, param, "unsupported_schema_keyword");
const unsupported = (keyword: string, param: string, why?: string) =>
  refuse(
    `The JSON-schema keyword '${keyword}' is not supported by local models' constrained generation` +
      `${why ? ` here: ${why}` : ""} (supported: ${SUPPORTED}).`,
    param,
  );

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const has = (o: object, key: string) => Object.hasOwn(o, key);
const isPrimitive = (v: unknown) => v === null || ["string", "number", "boolean"].includes(typeof v);
/** Sets `key` as an own property, whatever it is ("__proto__" included). */
function put(o: Obj, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
/** `true`, or a schema of annotations only: admits any value. */
const isAny = (v: unknown) =>
  v === true || (isObj(v) && Object.keys(v).every((k) => ANNOTATIONS.has(k) || k === "description"));
const anySchema = (): Obj => ({
  oneOf: [
    { type: ["string", "number", "boolean", "null"] },
    { type: "object", additionalProperties: true },
    { type: "array" },
  ],
});

/**
 * Checks a client's JSON schema and rewrites it into the subset node-llama-cpp's grammar
 * expresses exactly, or throws a 400 naming the offending place: `param` is `${param}.properties.age.minimum`
 * style (array indexes as `[i]`, e.g. `${param}.anyOf[1].type`).
 */
export function grammarSchema(schema: unknown, param: string): GrammarSchema {
  if (!isObj(schema)) throw invalid("A JSON schema must be an object.", param);
  const ctx: Ctx = { root: param, nodes: 0, values: 0, defs: new Map(), refs: [], owner: null };
  const defs = collectDefs(schema, param, ctx);
  const out = walk(schema, param, 0, ctx, true);
  const outDefs: Obj = {};
  for (const [name, def, p] of defs) {
    ctx.owner = name;
    put(outDefs, name, walk(def, p, 1, ctx));
  }
  refuseCycles(ctx.refs, [null, ...defs.map((d) => d[0])]);
  const holdsDefs = has(out, "$ref") || has(out, "oneOf") || out.type === "object" || out.type === "array";
  if (defs.length > 0 && holdsDefs) out.$defs = outDefs;
  return out;
}

/** The root's `$defs` and draft-07 `definitions`, by name (nested ones are refused where they stand). */
function collectDefs(schema: Obj, param: string, ctx: Ctx): [string, unknown, string][] {
  const defs: [string, unknown, string][] = [];
  for (const key of ["$defs", "definitions"]) {
    if (!has(schema, key)) continue;
    if (!isObj(schema[key])) throw invalid(`'${key}' must be an object of schemas.`, `${param}.${key}`);
    for (const [name, def] of Object.entries(schema[key])) {
      const p = `${param}.${key}.${name}`;
      if (ctx.defs.has(name)) throw invalid(`'${name}' is defined in both $defs and definitions.`, p);
      ctx.defs.set(name, key);
      defs.push([name, def, p]);
    }
  }
  return defs;
}

function walk(s: unknown, p: string, depth: number, ctx: Ctx, root = false): Obj {
  // checked before going deeper: a hostile schema nested 100 000 levels costs 33 frames
  if (depth > MAX_SCHEMA_DEPTH) throw invalid(`The schema nests more than ${MAX_SCHEMA_DEPTH} levels deep.`, p);
  if (++ctx.nodes > MAX_SCHEMA_NODES)
    throw invalid(`The schema has more than ${MAX_SCHEMA_NODES} subschemas.`, ctx.root);
  if (s === true) return anySchema();
  if (s === false) throw refuse("A 'false' schema (no value is valid) is not supported here.", p);
  if (!isObj(s)) throw invalid("A schema must be an object.", p);
  const keys = checkKeywords(s, p, root);
  let out: Obj;
  if (has(s, "$ref")) out = refSchema(s, p, keys, ctx);
  else if (has(s, "oneOf") || has(s, "anyOf")) out = unionSchema(s, p, keys, depth, ctx);
  else if (has(s, "const") || has(s, "enum")) out = literalSchema(s, p, keys, ctx);
  else out = typedSchema(s, p, keys, depth, ctx);
  return typeof s.description === "string" ? { ...out, description: s.description } : out;
}

/** The keywords that constrain, after refusing unknown ones; annotations are left out. */
function checkKeywords(s: Obj, p: string, root: boolean): string[] {
  const keys: string[] = [];
  for (const key of Object.keys(s)) {
    const at = `${p}.${key}`;
    if (key === "$id" && !root) throw unsupported(key, at, "a nested $id changes what its $refs point at");
    if (ANNOTATIONS.has(key)) continue;
    if (key === "$defs" || key === "definitions") {
      if (root) continue;
      throw unsupported(key, at, "definitions are only read at the root");
    }
    if (key === "description") {
      if (typeof s[key] !== "string") throw invalid("'description' must be a string.", at);
      continue;
    }
    if (!GENERAL.includes(key) && !TYPED_KEYWORDS.includes(key)) throw unsupported(key, at);
    keys.push(key);
  }
  if (has(s, "format")) {
    if (typeof s.format !== "string") throw invalid("'format' must be a string.", `${p}.format`);
    if (!FORMATS.includes(s.format)) {
      throw unsupported("format", `${p}.format`, `the formats are ${FORMATS.join(", ")}`);
    }
  }
  return keys;
}

/** Refuses the first keyword next to `main` other than `allowed` (node-llama-cpp would ignore it). */
function alone(keys: string[], p: string, main: string, allowed: string[] = []): void {
  const other = keys.find((k) => k !== main && !allowed.includes(k));
  if (other) throw unsupported(other, `${p}.${other}`, `it cannot stand next to '${main}'`);
}

function refSchema(s: Obj, p: string, keys: string[], ctx: Ctx): Obj {
  const at = `${p}.$ref`;
  alone(keys, p, "$ref");
  if (typeof s.$ref !== "string") throw invalid("'$ref' must be a string.", at);
  let pointer: string;
  try {
    pointer = s.$ref.startsWith("#") ? decodeURIComponent(s.$ref.slice(1)) : "";
  } catch {
    throw invalid("'$ref' is not a valid URI fragment.", at);
  }
  const m = /^\/(\$defs|definitions)\/([^/]+)$/.exec(pointer);
  if (!m) throw unsupported("$ref", at, "a reference is '#/$defs/<name>'");
  const name = m[2].replace(/~1/g, "/").replace(/~0/g, "~");
  if (ctx.defs.get(name) !== m[1]) throw invalid(`'$ref' names no definition in the root's ${m[1]}.`, at);
  ctx.refs.push({ owner: ctx.owner, target: name, param: at });
  return { $ref: `#/$defs/${name}` };
}

function unionSchema(s: Obj, p: string, keys: string[], depth: number, ctx: Ctx): Obj {
  const key = has(s, "oneOf") ? "oneOf" : "anyOf";
  alone(keys, p, key);
  const branches = s[key];
  if (!Array.isArray(branches) || branches.length === 0) {
    throw invalid(`'${key}' must be a non-empty array of schemas.`, `${p}.${key}`);
  }
  // a grammar's union admits what anyOf admits
  return { oneOf: branches.map((b, i) => walk(b, `${p}.${key}[${i}]`, depth + 1, ctx)) };
}

/** const / enum (with a `type`, only the values of that type). */
function literalSchema(s: Obj, p: string, keys: string[], ctx: Ctx): Obj {
  const key = has(s, "enum") ? "enum" : "const";
  alone(keys, p, key, ["const", "enum", "type"]);
  if (key === "enum" && (!Array.isArray(s.enum) || s.enum.length === 0)) {
    throw invalid("'enum' must be a non-empty array.", `${p}.enum`);
  }
  ctx.values += key === "enum" ? (s.enum as unknown[]).length : 1;
  if (ctx.values > MAX_SCHEMA_VALUES) {
    throw invalid(`The schema has more than ${MAX_SCHEMA_VALUES} enum and const values.`, `${p}.${key}`);
  }
  for (const [k, list] of [
    ["enum", s.enum ?? []],
    ["const", [s.const]],
  ] as const) {
    if (has(s, k) && !(list as unknown[]).every(isPrimitive)) {
      throw unsupported(k, `${p}.${k}`, "values are strings, numbers, booleans or null");
    }
  }
  let values = key === "enum" ? [...(s.enum as unknown[])] : [s.const];
  if (has(s, "const")) values = values.filter((v) => v === s.const);
  const types = parseTypes(s, p);
  if (types) values = values.filter((v) => types.some((t) => isOfType(v, t)));
  if (values.length === 0) throw invalid(`No value satisfies '${key}' together with its siblings.`, `${p}.${key}`);
  return has(s, "const") ? { const: values[0] } : { enum: values };
}

function isOfType(v: unknown, type: string): boolean {
  if (type === "integer") return Number.isInteger(v);
  if (type === "null") return v === null;
  return typeof v === type;
}

function parseTypes(s: Obj, p: string): string[] | undefined {
  if (!has(s, "type")) return undefined;
  const list: unknown[] = Array.isArray(s.type) ? s.type : [s.type];
  if (list.length === 0 || !list.every((t) => typeof t === "string" && TYPES.includes(t))) {
    throw invalid(`'type' must be one of ${TYPES.join(", ")}, or a non-empty array of them.`, `${p}.type`);
  }
  return [...new Set(list as string[])];
}

/** `type` (or the types its keywords constrain) with the keywords of each. */
function typedSchema(s: Obj, p: string, keys: string[], depth: number, ctx: Ctx): Obj {
  const types = parseTypes(s, p) ?? Object.keys(TYPED).filter((t) => TYPED[t].some((k) => keys.includes(k)));
  if (types.length === 0) return anySchema();
  const kw: Obj = {};
  countKeywords(s, p, kw);
  objectKeywords(s, p, kw, (v, q) => walk(v, q, depth + 1, ctx));
  arrayKeywords(s, p, kw, (v, q) => walk(v, q, depth + 1, ctx));
  if (has(s, "format")) kw.format = s.format;
  const branch = (t: string): Obj => {
    const out: Obj = { type: t };
    for (const k of TYPED[t] ?? []) if (has(kw, k)) out[k] = kw[k];
    return out;
  };
  if (types.length === 1) return branch(types[0]);
  const plain = types.every((t) => PRIMITIVES.includes(t) && Object.keys(branch(t)).length === 1);
  return plain ? { type: types } : { oneOf: types.map(branch) };
}

function countKeywords(s: Obj, p: string, kw: Obj): void {
  for (const pair of COUNTS) {
    for (const k of pair) {
      if (!has(s, k)) continue;
      const v = s[k];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
        throw invalid(`'${k}' must be a non-negative integer.`, `${p}.${k}`);
      }
      if (v > MAX_SCHEMA_COUNT) {
        throw unsupported(k, `${p}.${k}`, `llama.cpp's grammar enforces a count of at most ${MAX_SCHEMA_COUNT}`);
      }
      kw[k] = v;
    }
    if (has(kw, pair[0]) && has(kw, pair[1]) && (kw[pair[0]] as number) > (kw[pair[1]] as number)) {
      throw invalid(`'${pair[0]}' is greater than '${pair[1]}'.`, `${p}.${pair[1]}`);
    }
  }
  if (has(s, "format")) {
    const k = ["minLength", "maxLength"].find((l) => has(kw, l));
    if (k) throw unsupported(k, `${p}.${k}`, "the grammar does not limit the length of a string with a 'format'");
  }
}

type Child = (v: unknown, param: string) => Obj;

function objectKeywords(s: Obj, p: string, kw: Obj, child: Child): void {
  const props: Obj = {};
  if (has(s, "properties")) {
    if (!isObj(s.properties)) throw invalid("'properties' must be an object of schemas.", `${p}.properties`);
    for (const [name, v] of Object.entries(s.properties)) put(props, name, child(v, `${p}.properties.${name}`));
    kw.properties = props;
  }
  if (has(s, "additionalProperties")) {
    const a = s.additionalProperties;
    const at = `${p}.additionalProperties`;
    if (a === false || isAny(a)) kw.additionalProperties = a !== false;
    else if (isObj(a)) kw.additionalProperties = child(a, at);
    else throw invalid("'additionalProperties' must be a boolean or a schema.", at);
  }
  if (has(s, "required")) {
    const r = s.required;
    if (!Array.isArray(r) || !r.every((n) => typeof n === "string")) {
      throw invalid("'required' must be an array of property names.", `${p}.required`);
    }
    kw.required = [...r];
    // the grammar writes the properties it lists, no others: a required one it does not list is added
    for (const name of r.filter((n) => !has(props, n))) {
      const extra = kw.additionalProperties;
      if (extra === false) throw invalid(`'${name}' is required but not allowed.`, `${p}.required`);
      put(props, name, isObj(extra) ? structuredClone(extra) : anySchema());
      kw.properties = props;
    }
  }
  const n = Object.keys(props).length;
  const [min, max] = [kw.minProperties as number | undefined, kw.maxProperties as number | undefined];
  if (max !== undefined && max < n) {
    throw unsupported("maxProperties", `${p}.maxProperties`, `the grammar writes all ${n} properties`);
  }
  if (min !== undefined && min > n) {
    if (kw.additionalProperties === false) {
      throw invalid("'minProperties' asks for more properties than are allowed.", `${p}.minProperties`);
    }
    kw.additionalProperties ??= true; // JSON Schema's default, which the grammar does not share
  }
}

function arrayKeywords(s: Obj, p: string, kw: Obj, child: Child): void {
  let fixed = 0;
  if (has(s, "prefixItems")) {
    if (!Array.isArray(s.prefixItems)) throw invalid("'prefixItems' must be an array of schemas.", `${p}.prefixItems`);
    kw.prefixItems = s.prefixItems.map((v, i) => child(v, `${p}.prefixItems[${i}]`));
    fixed = s.prefixItems.length;
  }
  const max = kw.maxItems as number | undefined;
  if (max !== undefined && max < fixed) {
    throw unsupported("maxItems", `${p}.maxItems`, `the grammar writes all ${fixed} prefixItems`);
  }
  if (!has(s, "items")) return;
  const items = s.items;
  if (Array.isArray(items)) {
    throw invalid("'items' must be a schema; list a tuple's items in 'prefixItems'.", `${p}.items`);
  }
  if (items === false) {
    // no items past prefixItems
    if (((kw.minItems as number | undefined) ?? 0) > fixed) throw invalid("'minItems' cannot be met.", `${p}.items`);
    kw.maxItems = fixed;
  } else if (!isAny(items)) kw.items = child(items, `${p}.items`);
}

/** Refuses a definition that reaches itself through $refs, at the $ref that closes the loop. */
function refuseCycles(refs: Ref[], starts: (string | null)[]): void {
  const edges = new Map<string | null, Ref[]>();
  for (const r of refs) {
    if (!edges.has(r.owner)) edges.set(r.owner, []);
    edges.get(r.owner)?.push(r);
  }
  const state = new Map<string | null, "open" | "done">();
  for (const start of starts) {
    if (state.has(start)) continue;
    state.set(start, "open");
    const stack = [{ node: start, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const ref = (edges.get(top.node) ?? [])[top.next++];
      if (!ref) {
        state.set(top.node, "done");
        stack.pop();
      } else if (state.get(ref.target) === "open") {
        throw invalid(
          `The schema is recursive ('#/$defs/${ref.target}' reaches itself): recursive schemas are not supported by local models' constrained generation, as a model might never finish the structure.`,
          ref.param,
        );
      } else if (!state.has(ref.target)) {
        state.set(ref.target, "open");
        stack.push({ node: ref.target, next: 0 });
      }
    }
  }
}
