import {
  grammarSchema,
  MAX_SCHEMA_COUNT,
  MAX_SCHEMA_DEPTH,
  MAX_SCHEMA_NODES,
  MAX_SCHEMA_VALUES,
} from "../../../../lib/openai/json-schema";
import { invalidAt, obj, P, refusal, unsupportedAt } from "./json-schema-fixtures";

// What grammarSchema refuses, and the bounds on a schema's size; what it accepts: json-schema.test.ts.

describe("grammarSchema: what node-llama-cpp's grammar can express", () => {
  test("a schema that is not an object is a 400 invalid_schema naming the parameter", () => {
    for (const bad of [null, undefined, "x", 3, true, [], [{ type: "string" }]]) {
      expect(refusal(bad, "tools[0].function.parameters")).toMatchObject(invalidAt("tools[0].function.parameters"));
    }
  });

  test("every keyword the grammar cannot express is refused where it stands, unknown ones too", () => {
    const refused = [
      "allOf",
      "not",
      "if",
      "then",
      "else",
      "pattern",
      "patternProperties",
      "minimum",
      "maximum",
      "exclusiveMinimum",
      "exclusiveMaximum",
      "multipleOf",
      "uniqueItems",
      "contains",
      "minContains",
      "maxContains",
      "dependentRequired",
      "dependentSchemas",
      "propertyNames",
      "unevaluatedProperties",
      "unevaluatedItems",
      "contentEncoding",
      "contentMediaType",
      "nullable",
      "$anchor",
      "$dynamicRef",
      "x-whatever",
    ];
    for (const key of refused) {
      const r = refusal(obj({ age: { type: "integer", [key]: 1 } }));
      expect(r).toMatchObject(unsupportedAt(`${P}.properties.age.${key}`));
      expect(r.message).toContain(`The JSON-schema keyword '${key}' is not supported`);
      expect(r.message).toContain("supported: type, description, const, enum, oneOf, anyOf, $ref");
    }
  });

  describe("$defs, definitions and $ref", () => {
    test("a $ref that is not #/$defs/<name> is refused at .$ref", () => {
      for (const $ref of [
        "#",
        "https://example.com/s.json",
        "#/properties/x",
        "#/$defs/A/properties/b",
        "other.json#/$defs/A",
      ]) {
        expect(refusal({ $defs: { A: obj({ b: { type: "string" } }) }, ...obj({ x: { $ref } }) })).toMatchObject(
          unsupportedAt(`${P}.properties.x.$ref`),
        );
      }
    });

    test("a $ref to a missing definition, or one that is not a string, is invalid_schema at .$ref", () => {
      expect(refusal(obj({ x: { $ref: "#/$defs/Nope" } }))).toMatchObject(invalidAt(`${P}.properties.x.$ref`));
      expect(refusal({ $defs: { A: { type: "string" } }, ...obj({ x: { $ref: "#/definitions/A" } }) })).toMatchObject(
        invalidAt(`${P}.properties.x.$ref`),
      );
      expect(refusal({ $defs: { toString: 1 }, type: "object" })).toMatchObject(invalidAt(`${P}.$defs.toString`));
      expect(refusal(obj({ x: { $ref: "#/$defs/constructor" } }))).toMatchObject(invalidAt(`${P}.properties.x.$ref`));
      expect(refusal(obj({ x: { $ref: 1 } }))).toMatchObject(invalidAt(`${P}.properties.x.$ref`));
      expect(refusal(obj({ x: { $ref: "#/%E0%A4%A" } }))).toMatchObject(invalidAt(`${P}.properties.x.$ref`));
      expect(refusal({ $defs: [], type: "object" })).toMatchObject(invalidAt(`${P}.$defs`));
    });

    test("keywords next to a $ref are refused (node-llama-cpp ignores them)", () => {
      const schema = { $defs: { A: { type: "string" } }, ...obj({ x: { $ref: "#/$defs/A", maxLength: 3 } }) };
      expect(refusal(schema)).toMatchObject(unsupportedAt(`${P}.properties.x.maxLength`));
    });

    test("nested $defs, definitions and $id are refused", () => {
      expect(refusal(obj({ x: { $defs: { A: { type: "string" } }, type: "string" } }))).toMatchObject(
        unsupportedAt(`${P}.properties.x.$defs`),
      );
      expect(refusal(obj({ x: { definitions: {}, type: "string" } }))).toMatchObject(
        unsupportedAt(`${P}.properties.x.definitions`),
      );
      expect(refusal(obj({ x: { $id: "other", type: "string" } }))).toMatchObject(
        unsupportedAt(`${P}.properties.x.$id`),
      );
    });

    test("a recursive schema is refused at the $ref that closes the loop", () => {
      const self = { $defs: { Node: obj({ next: { oneOf: [{ $ref: "#/$defs/Node" }, { type: "null" }] } }) } };
      const r = refusal({ ...self, $ref: "#/$defs/Node" });
      expect(r).toMatchObject(invalidAt(`${P}.$defs.Node.properties.next.oneOf[0].$ref`));
      expect(r.message).toMatch(/recursive schemas are not supported/);
      // unused, and through definitions, still refused
      const mutual = {
        definitions: {
          A: obj({ b: { $ref: "#/definitions/B" } }),
          B: { type: "array", items: { $ref: "#/definitions/A" } },
        },
        type: "string",
      };
      expect(refusal(mutual)).toMatchObject(invalidAt(`${P}.definitions.B.items.$ref`));
    });

    test("a loop through ten definitions, each nested ten levels deep, is refused naming its $ref", () => {
      const deep = (ref: string) => {
        let s: Record<string, unknown> = { $ref: ref };
        for (let i = 0; i < 10; i++) s = obj({ [`l${i}`]: s });
        return s;
      };
      const $defs: Record<string, unknown> = {};
      for (let i = 0; i < 10; i++) $defs[`D${i}`] = deep(`#/$defs/D${(i + 1) % 10}`);
      const path = Array.from({ length: 10 }, (_, i) => `.properties.l${9 - i}`).join("");
      const r = refusal({ $defs, ...obj({ start: { $ref: "#/$defs/D3" } }) });
      expect(r).toMatchObject(invalidAt(`${P}.$defs.D2${path}.$ref`));
    });
  });

  describe("values of keywords", () => {
    test("counts are non-negative integers, min no more than max", () => {
      for (const key of ["minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"]) {
        for (const bad of [-1, 1.5, "3", null]) {
          expect(refusal(obj({ a: { [key]: bad } }))).toMatchObject(invalidAt(`${P}.properties.a.${key}`));
        }
      }
      expect(refusal({ type: "string", minLength: 3, maxLength: 2 })).toMatchObject(invalidAt(`${P}.maxLength`));
      expect(refusal({ type: "array", minItems: 3, maxItems: 2 })).toMatchObject(invalidAt(`${P}.maxItems`));
      expect(refusal({ type: "object", minProperties: 3, maxProperties: 2 })).toMatchObject(
        invalidAt(`${P}.maxProperties`),
      );
      expect(grammarSchema({ type: "string", minLength: 2, maxLength: 2 }, P)).toEqual({
        type: "string",
        minLength: 2,
        maxLength: 2,
      });
    });

    test("a count above what llama.cpp's grammar enforces is refused", () => {
      expect(grammarSchema({ type: "string", maxLength: MAX_SCHEMA_COUNT }, P)).toEqual({
        type: "string",
        maxLength: MAX_SCHEMA_COUNT,
      });
      expect(refusal(obj({ a: { type: "string", maxLength: MAX_SCHEMA_COUNT + 1 } }))).toMatchObject(
        unsupportedAt(`${P}.properties.a.maxLength`),
      );
      expect(refusal({ type: "array", minItems: 5000 })).toMatchObject(unsupportedAt(`${P}.minItems`));
    });

    test("properties is an object of schemas; required an array of strings", () => {
      expect(refusal({ type: "object", properties: [] })).toMatchObject(invalidAt(`${P}.properties`));
      expect(refusal(obj({ a: "string" }))).toMatchObject(invalidAt(`${P}.properties.a`));
      expect(refusal(obj({}, { required: "a" }))).toMatchObject(invalidAt(`${P}.required`));
      expect(refusal(obj({}, { required: [1] }))).toMatchObject(invalidAt(`${P}.required`));
    });

    test("items is a schema (a tuple goes in prefixItems); prefixItems an array of schemas", () => {
      const r = refusal({ type: "array", items: [{ type: "string" }] });
      expect(r).toMatchObject(invalidAt(`${P}.items`));
      expect(r.message).toContain("prefixItems");
      expect(refusal({ type: "array", prefixItems: { type: "string" } })).toMatchObject(invalidAt(`${P}.prefixItems`));
      expect(refusal({ type: "array", prefixItems: [{ type: "string" }, { minimum: 1 }] })).toMatchObject(
        unsupportedAt(`${P}.prefixItems[1].minimum`),
      );
      expect(
        grammarSchema({ type: "array", prefixItems: [{ type: "string" }], items: { type: "integer" } }, P),
      ).toEqual({ type: "array", prefixItems: [{ type: "string" }], items: { type: "integer" } });
      expect(grammarSchema({ type: "array" }, P)).toEqual({ type: "array" });
    });

    test("additionalProperties is a boolean or a schema", () => {
      expect(grammarSchema({ type: "object", additionalProperties: { type: "integer" } }, P)).toEqual({
        type: "object",
        additionalProperties: { type: "integer" },
      });
      expect(refusal({ type: "object", additionalProperties: "no" })).toMatchObject(
        invalidAt(`${P}.additionalProperties`),
      );
      expect(refusal({ type: "object", additionalProperties: { pattern: "x" } })).toMatchObject(
        unsupportedAt(`${P}.additionalProperties.pattern`),
      );
    });

    test("counts the grammar would break: it writes every property and every prefixItem", () => {
      expect(refusal(obj({ a: { type: "string" }, b: { type: "string" } }, { maxProperties: 1 }))).toMatchObject(
        unsupportedAt(`${P}.maxProperties`),
      );
      expect(
        refusal({ type: "array", prefixItems: [{ type: "string" }, { type: "null" }], maxItems: 1 }),
      ).toMatchObject(unsupportedAt(`${P}.maxItems`));
      // more properties than listed: additional ones become allowed, as JSON Schema's default has it
      expect(grammarSchema(obj({ a: { type: "string" } }, { minProperties: 2 }), P)).toEqual(
        obj({ a: { type: "string" } }, { additionalProperties: true, minProperties: 2 }),
      );
      expect(refusal(obj({ a: { type: "string" } }, { minProperties: 2, additionalProperties: false }))).toMatchObject(
        invalidAt(`${P}.minProperties`),
      );
    });
  });

  describe("size limits", () => {
    const nest = (levels: number) => {
      let s: Record<string, unknown> = { type: "string" };
      for (let i = 0; i < levels; i++) s = obj({ a: s });
      return s;
    };

    test(`${MAX_SCHEMA_DEPTH} levels pass; one more is invalid_schema at the deepest`, () => {
      expect(() => grammarSchema(nest(MAX_SCHEMA_DEPTH), P)).not.toThrow();
      const r = refusal(nest(MAX_SCHEMA_DEPTH + 1));
      expect(r).toMatchObject(invalidAt(P + ".properties.a".repeat(MAX_SCHEMA_DEPTH + 1)));
    });

    test("a schema nested 100 000 levels deep is a 400, not a stack overflow", () => {
      let s: Record<string, unknown> = { type: "string" };
      for (let i = 0; i < 100_000; i++) s = { type: "array", items: s };
      expect(refusal(s)).toMatchObject({ status: 400, code: "invalid_schema" });
      let o: Record<string, unknown> = {};
      for (let i = 0; i < 100_000; i++) o = { anyOf: [o] };
      expect(refusal(o)).toMatchObject({ status: 400, code: "invalid_schema" });
    });

    test(`more than ${MAX_SCHEMA_NODES} subschemas is invalid_schema`, () => {
      const wide = (n: number) =>
        obj(Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: "integer" }])));
      expect(() => grammarSchema(wide(MAX_SCHEMA_NODES - 1), P)).not.toThrow();
      expect(refusal(wide(MAX_SCHEMA_NODES))).toMatchObject(invalidAt(P));
      const $defs = Object.fromEntries(Array.from({ length: MAX_SCHEMA_NODES }, (_, i) => [`D${i}`, { type: "null" }]));
      expect(refusal({ $defs, type: "object" })).toMatchObject(invalidAt(P));
    });
  });
});

describe("enum values are bounded", () => {
  test("more than MAX_SCHEMA_VALUES enum and const values in one schema is invalid_schema at the enum that passes it", () => {
    const values = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}`);
    expect(() =>
      grammarSchema({ type: "object", properties: { a: { enum: values(MAX_SCHEMA_VALUES, "a") } } }, "s"),
    ).not.toThrow();
    let err: { code?: number; type?: string; data?: { param?: string } } = {};
    try {
      grammarSchema(
        { type: "object", properties: { a: { enum: values(600, "a") }, b: { enum: values(600, "b") } } },
        "s",
      );
    } catch (e) {
      err = e as typeof err;
    }
    expect([err.code, err.type, err.data?.param]).toEqual([400, "invalid_schema", "s.properties.b.enum"]);
  });
});
