import {
  grammarSchema,
  MAX_SCHEMA_COUNT,
  MAX_SCHEMA_DEPTH,
  MAX_SCHEMA_NODES,
  MAX_SCHEMA_VALUES,
} from "../../../../lib/openai/json-schema";

const P = "response_format.json_schema.schema";
const ANY = {
  oneOf: [
    { type: ["string", "number", "boolean", "null"] },
    { type: "object", additionalProperties: true },
    { type: "array" },
  ],
};

/** The 400 grammarSchema throws for `schema`: status, code, param and message. */
function refusal(schema: unknown, param = P) {
  try {
    grammarSchema(schema, param);
  } catch (err) {
    const e = err as { code: number; type: string; data: { param: string | null }; message: string };
    return { status: e.code, code: e.type, param: e.data.param, message: e.message };
  }
  throw new Error("expected a 400");
}
const unsupportedAt = (param: string) => ({ status: 400, code: "unsupported_schema_keyword", param });
const invalidAt = (param: string) => ({ status: 400, code: "invalid_schema", param });
const obj = (properties: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  type: "object",
  properties,
  ...more,
});

describe("grammarSchema: what node-llama-cpp's grammar can express", () => {
  test("a schema that is not an object is a 400 invalid_schema naming the parameter", () => {
    for (const bad of [null, undefined, "x", 3, true, [], [{ type: "string" }]]) {
      expect(refusal(bad, "tools[0].function.parameters")).toMatchObject(invalidAt("tools[0].function.parameters"));
    }
  });

  test("a typical OpenAI strict-mode schema passes, nullable types kept or split as the grammar needs", () => {
    const schema = obj(
      {
        name: { type: "string", description: "Full name" },
        age: { type: ["integer", "null"] },
        nick: { type: ["string", "null"], maxLength: 5 },
        when: { type: "string", format: "date-time" },
        tags: { type: "array", items: { type: "string", enum: ["a", "b"] }, minItems: 1, maxItems: 3 },
        kind: { type: "string", const: "person" },
      },
      { required: ["name", "age", "nick", "when", "tags", "kind"], additionalProperties: false },
    );
    expect(grammarSchema(schema, P)).toEqual(
      obj(
        {
          name: { type: "string", description: "Full name" },
          age: { type: ["integer", "null"] },
          nick: { oneOf: [{ type: "string", maxLength: 5 }, { type: "null" }] },
          when: { type: "string", format: "date-time" },
          tags: { type: "array", items: { enum: ["a", "b"] }, minItems: 1, maxItems: 3 },
          kind: { const: "person" },
        },
        { required: ["name", "age", "nick", "when", "tags", "kind"], additionalProperties: false },
      ),
    );
  });

  test("annotations are dropped, description is kept (and must be a string)", () => {
    const schema = {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      $id: "https://example.com/p",
      title: "P",
      $comment: "c",
      description: "a person",
      type: "object",
      properties: {
        a: { type: "string", default: "x", examples: ["y"], deprecated: true, readOnly: true, writeOnly: false },
      },
    };
    expect(grammarSchema(schema, P)).toEqual({
      type: "object",
      properties: { a: { type: "string" } },
      description: "a person",
    });
    expect(refusal({ type: "string", description: 3 })).toMatchObject(invalidAt(`${P}.description`));
  });

  test("anyOf becomes oneOf; oneOf stays; either must be a non-empty array, alone", () => {
    const branches = [{ type: "string" }, { type: "null" }];
    expect(grammarSchema({ anyOf: branches, title: "t", description: "d" }, P)).toEqual({
      oneOf: branches,
      description: "d",
    });
    expect(grammarSchema({ oneOf: branches }, P)).toEqual({ oneOf: branches });
    expect(refusal({ anyOf: [] })).toMatchObject(invalidAt(`${P}.anyOf`));
    expect(refusal({ oneOf: { type: "string" } })).toMatchObject(invalidAt(`${P}.oneOf`));
    expect(refusal({ anyOf: [{ type: "string" }, { type: "integer", minimum: 1 }] })).toMatchObject(
      unsupportedAt(`${P}.anyOf[1].minimum`),
    );
    expect(refusal({ anyOf: [{ type: "string" }, { type: "strin" }] })).toMatchObject(invalidAt(`${P}.anyOf[1].type`));
    // the grammar ignores what stands next to a union
    expect(refusal({ type: "object", anyOf: branches })).toMatchObject(unsupportedAt(`${P}.type`));
    expect(refusal({ oneOf: branches, anyOf: branches })).toMatchObject(unsupportedAt(`${P}.anyOf`));
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

  test("format is one of date-time, time, date; another is refused at .format", () => {
    for (const format of ["date-time", "time", "date"]) {
      expect(grammarSchema({ type: "string", format }, P)).toEqual({ type: "string", format });
    }
    for (const format of ["email", "uuid", "uri"]) {
      expect(refusal(obj({ a: { type: "string", format } }))).toMatchObject(unsupportedAt(`${P}.properties.a.format`));
    }
    expect(refusal({ type: "string", format: 1 })).toMatchObject(invalidAt(`${P}.format`));
    // the grammar does not limit a formatted string's length
    expect(refusal({ type: "string", format: "date", maxLength: 5 })).toMatchObject(unsupportedAt(`${P}.maxLength`));
  });

  describe("type", () => {
    test("a single-entry array becomes the plain type; duplicates collapse", () => {
      expect(grammarSchema({ type: ["string"], maxLength: 3 }, P)).toEqual({ type: "string", maxLength: 3 });
      expect(grammarSchema({ type: ["number", "number"] }, P)).toEqual({ type: "number" });
    });

    test("primitive types without keywords that apply stay an array", () => {
      expect(grammarSchema({ type: ["string", "integer", "number", "boolean", "null"] }, P)).toEqual({
        type: ["string", "integer", "number", "boolean", "null"],
      });
      // minItems does not apply to any of them: it is dropped, as JSON Schema ignores it there
      expect(grammarSchema({ type: ["integer", "null"], minItems: 1 }, P)).toEqual({ type: ["integer", "null"] });
    });

    test("with object, array or keywords that apply, a oneOf with each type's keywords", () => {
      expect(grammarSchema({ type: ["string", "null"], maxLength: 5 }, P)).toEqual({
        oneOf: [{ type: "string", maxLength: 5 }, { type: "null" }],
      });
      expect(
        grammarSchema(
          {
            type: ["object", "array", "string", "null"],
            description: "d",
            properties: { a: { type: "string" } },
            additionalProperties: false,
            items: { type: "integer" },
            maxItems: 2,
          },
          P,
        ),
      ).toEqual({
        oneOf: [
          { type: "object", properties: { a: { type: "string" } }, additionalProperties: false },
          { type: "array", items: { type: "integer" }, maxItems: 2 },
          { type: "string" },
          { type: "null" },
        ],
        description: "d",
      });
      expect(grammarSchema({ type: ["object", "null"] }, P)).toEqual({ oneOf: [{ type: "object" }, { type: "null" }] });
    });

    test("an unknown type name or an empty list is invalid_schema at .type", () => {
      for (const type of ["str", ["string", "date"], [], 3, null, ["string", 1]]) {
        expect(refusal(obj({ a: { type } }))).toMatchObject(invalidAt(`${P}.properties.a.type`));
      }
    });

    test("without a type, the types its keywords constrain (the grammar may admit less, never more)", () => {
      expect(grammarSchema({ properties: { a: { type: "string" } } }, P)).toEqual(obj({ a: { type: "string" } }));
      expect(grammarSchema({ maxLength: 3, items: { type: "null" } }, P)).toEqual({
        oneOf: [
          { type: "string", maxLength: 3 },
          { type: "array", items: { type: "null" } },
        ],
      });
    });
  });

  describe("const and enum", () => {
    test("primitives pass; with a type, only the values of that type", () => {
      expect(grammarSchema({ enum: ["a", 1, true, null], description: "d" }, P)).toEqual({
        enum: ["a", 1, true, null],
        description: "d",
      });
      expect(grammarSchema({ type: ["string", "null"], enum: ["a", null, 2] }, P)).toEqual({ enum: ["a", null] });
      expect(grammarSchema({ type: "integer", enum: [1, 1.5] }, P)).toEqual({ enum: [1] });
      expect(grammarSchema({ const: 0, enum: [0, 1] }, P)).toEqual({ const: 0 });
      expect(grammarSchema({ type: "boolean", const: false }, P)).toEqual({ const: false });
      expect(grammarSchema({ const: null }, P)).toEqual({ const: null });
    });

    test("objects and arrays are refused at the keyword; an empty or unsatisfiable list is invalid", () => {
      expect(refusal({ enum: ["a", { b: 1 }] })).toMatchObject(unsupportedAt(`${P}.enum`));
      expect(refusal({ enum: [[1]] })).toMatchObject(unsupportedAt(`${P}.enum`));
      expect(refusal({ const: { a: 1 } })).toMatchObject(unsupportedAt(`${P}.const`));
      expect(refusal({ const: [1] })).toMatchObject(unsupportedAt(`${P}.const`));
      expect(refusal({ enum: [] })).toMatchObject(invalidAt(`${P}.enum`));
      expect(refusal({ enum: "a" })).toMatchObject(invalidAt(`${P}.enum`));
      expect(refusal({ type: "string", enum: [1, 2] })).toMatchObject(invalidAt(`${P}.enum`));
      expect(refusal({ const: "x", enum: ["a"] })).toMatchObject(invalidAt(`${P}.enum`));
    });

    test("other keywords next to them are refused (the grammar would ignore them)", () => {
      expect(refusal({ type: "string", enum: ["a", "bbbb"], maxLength: 2 })).toMatchObject(
        unsupportedAt(`${P}.maxLength`),
      );
      expect(refusal({ const: "a", oneOf: [{ type: "string" }] })).toMatchObject(unsupportedAt(`${P}.const`));
    });
  });

  describe("$defs, definitions and $ref", () => {
    test("definitions become $defs, their $refs follow; $ref may carry a description", () => {
      const schema = {
        definitions: { Item: { type: "object", properties: { n: { type: "integer" } } } },
        type: "object",
        properties: { items: { type: "array", items: { $ref: "#/definitions/Item", description: "one" } } },
      };
      expect(grammarSchema(schema, P)).toEqual({
        type: "object",
        properties: { items: { type: "array", items: { $ref: "#/$defs/Item", description: "one" } } },
        $defs: { Item: { type: "object", properties: { n: { type: "integer" } } } },
      });
    });

    test("a root $ref with its $defs (pydantic's shape) passes; $defs and definitions merge", () => {
      const schema = {
        $ref: "#/$defs/A",
        $defs: { A: obj({ b: { $ref: "#/definitions/B" } }) },
        definitions: { B: { type: "string" } },
      };
      expect(grammarSchema(schema, P)).toEqual({
        $ref: "#/$defs/A",
        $defs: { A: obj({ b: { $ref: "#/$defs/B" } }), B: { type: "string" } },
      });
      const clash = { $defs: { A: { type: "string" } }, definitions: { A: { type: "string" } }, type: "object" };
      expect(refusal(clash)).toMatchObject(invalidAt(`${P}.definitions.A`));
    });

    test("JSON-pointer escapes in a $ref name the definition they mean; odd names survive", () => {
      const schema = JSON.parse(
        '{"$defs": {"a/b": {"type": "integer"}, "__proto__": {"type": "string"}, "c d": {"type": "null"}},' +
          '"type": "object", "properties": {"x": {"$ref": "#/$defs/a~1b"}, "y": {"$ref": "#/$defs/__proto__"},' +
          '"z": {"$ref": "#/$defs/c%20d"}, "__proto__": {"type": "boolean"}}}',
      );
      const out = grammarSchema(schema, P);
      expect(JSON.stringify(out)).toBe(
        '{"type":"object","properties":{"x":{"$ref":"#/$defs/a/b"},"y":{"$ref":"#/$defs/__proto__"},' +
          '"z":{"$ref":"#/$defs/c d"},"__proto__":{"type":"boolean"}},' +
          '"$defs":{"a/b":{"type":"integer"},"__proto__":{"type":"string"},"c d":{"type":"null"}}}',
      );
    });

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

    test("a chain of definitions without a loop passes", () => {
      const $defs: Record<string, unknown> = { D9: { type: "string" } };
      for (let i = 0; i < 9; i++) $defs[`D${i}`] = obj({ next: { $ref: `#/$defs/D${i + 1}` } });
      expect(() => grammarSchema({ $defs, ...obj({ start: { $ref: "#/$defs/D0" } }) }, P)).not.toThrow();
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

  describe("objects", () => {
    test("an object without properties stays {type: object} with what applies", () => {
      expect(grammarSchema({ type: "object" }, P)).toEqual({ type: "object" });
      expect(grammarSchema({ type: "object", additionalProperties: false, maxProperties: 0 }, P)).toEqual({
        type: "object",
        additionalProperties: false,
        maxProperties: 0,
      });
    });

    test("a required name missing from properties is kept, and listed so the grammar writes it", () => {
      expect(grammarSchema(obj({ a: { type: "string" } }, { required: ["a", "b"] }), P)).toEqual(
        obj({ a: { type: "string" }, b: ANY }, { required: ["a", "b"] }),
      );
      expect(grammarSchema({ type: "object", required: ["b"], additionalProperties: { type: "integer" } }, P)).toEqual({
        type: "object",
        properties: { b: { type: "integer" } },
        required: ["b"],
        additionalProperties: { type: "integer" },
      });
      expect(refusal(obj({}, { required: ["b"], additionalProperties: false }))).toMatchObject(
        invalidAt(`${P}.required`),
      );
    });
  });

  describe("boolean and empty schemas", () => {
    test("true, or a schema of annotations only, admits any value: a union of every JSON type", () => {
      expect(grammarSchema({}, P)).toEqual(ANY);
      expect(grammarSchema({ title: "anything", description: "d" }, P)).toEqual({ ...ANY, description: "d" });
      expect(grammarSchema(obj({ a: true, b: {} }), P)).toEqual(obj({ a: ANY, b: ANY }));
      expect(grammarSchema({ anyOf: [true, { type: "null" }] }, P)).toEqual({ oneOf: [ANY, { type: "null" }] });
    });

    test("false is refused, except as additionalProperties and items", () => {
      expect(refusal(obj({ a: false }))).toMatchObject(unsupportedAt(`${P}.properties.a`));
      expect(refusal({ oneOf: [false] })).toMatchObject(unsupportedAt(`${P}.oneOf[0]`));
      expect(grammarSchema({ type: "object", additionalProperties: false }, P)).toEqual({
        type: "object",
        additionalProperties: false,
      });
      expect(grammarSchema({ type: "object", additionalProperties: true }, P)).toEqual({
        type: "object",
        additionalProperties: true,
      });
      expect(grammarSchema({ type: "object", additionalProperties: {} }, P)).toEqual({
        type: "object",
        additionalProperties: true,
      });
    });

    test("items: true or {} is no constraint; items: false ends the array after prefixItems", () => {
      expect(grammarSchema({ type: "array", items: true }, P)).toEqual({ type: "array" });
      expect(grammarSchema({ type: "array", items: {}, minItems: 1 }, P)).toEqual({ type: "array", minItems: 1 });
      expect(grammarSchema({ type: "array", prefixItems: [{ type: "string" }], items: false }, P)).toEqual({
        type: "array",
        prefixItems: [{ type: "string" }],
        maxItems: 1,
      });
      expect(grammarSchema({ type: "array", items: false }, P)).toEqual({ type: "array", maxItems: 0 });
      expect(refusal({ type: "array", items: false, minItems: 1 })).toMatchObject(invalidAt(`${P}.items`));
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

  describe("purity", () => {
    const schema = () => ({
      $defs: { A: { type: ["string", "null"], maxLength: 3, title: "A" } },
      type: "object",
      properties: {
        a: { $ref: "#/$defs/A" },
        b: { anyOf: [{ type: "integer" }, { type: "null" }], default: 1 },
        e: { enum: ["x", "y"] },
      },
      required: ["a", "b", "c"],
    });

    test("the input is never changed; the output shares nothing with it", () => {
      const input = schema();
      const before = JSON.stringify(input);
      const deepFreeze = (v: unknown): unknown => {
        if (typeof v === "object" && v !== null) Object.values(Object.freeze(v)).forEach(deepFreeze);
        return v;
      };
      const out = grammarSchema(deepFreeze(input), P);
      expect(JSON.stringify(input)).toBe(before);
      const props = out.properties as Record<string, { enum?: unknown }>;
      expect(props.e.enum).toEqual(input.properties.e.enum);
      expect(props.e.enum).not.toBe(input.properties.e.enum);
      expect(out.required).not.toBe(input.required);
    });

    test("the same schema, in any keyword order, gives the same JSON", () => {
      const a = JSON.stringify(grammarSchema(schema(), P));
      expect(JSON.stringify(grammarSchema(schema(), P))).toBe(a);
      const s = schema();
      const reordered = { required: s.required, properties: s.properties, type: s.type, $defs: s.$defs };
      expect(JSON.stringify(grammarSchema(reordered, P))).toBe(a);
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
