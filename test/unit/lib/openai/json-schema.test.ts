import { grammarSchema } from "../../../../lib/openai/json-schema";
import { invalidAt, obj, P, refusal, unsupportedAt } from "./json-schema-fixtures";

// What grammarSchema accepts and how it rewrites it; what it refuses, and its bounds: json-schema-refusals.test.ts.

const ANY = {
  oneOf: [
    { type: ["string", "number", "boolean", "null"] },
    { type: "object", additionalProperties: true },
    { type: "array" },
  ],
};

describe("grammarSchema: what node-llama-cpp's grammar can express", () => {
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

    test("a chain of definitions without a loop passes", () => {
      const $defs: Record<string, unknown> = { D9: { type: "string" } };
      for (let i = 0; i < 9; i++) $defs[`D${i}`] = obj({ next: { $ref: `#/$defs/D${i + 1}` } });
      expect(() => grammarSchema({ $defs, ...obj({ start: { $ref: "#/$defs/D0" } }) }, P)).not.toThrow();
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
