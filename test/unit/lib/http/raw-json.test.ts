/** Values kept with the text they were parsed from (lib/http/raw-json.ts). */
import { changed, parseKeepingText, toJson } from "../../../../lib/http/raw-json";

describe("raw JSON text kept with a value", () => {
  test("an object on one line serialises as the text it came as", () => {
    const text = '{ "a" : 1,  "b": [1, 2] }';
    const v = parseKeepingText(text);
    expect(toJson(v)).toBe(text);
    // the kept text is invisible to JSON and to the keys
    expect(JSON.stringify(v)).toBe('{"a":1,"b":[1,2]}');
    expect(Object.keys(v as object)).toEqual(["a", "b"]);
    const keys: string[] = [];
    for (const k in v as object) keys.push(k);
    expect(keys).toEqual(["a", "b"]);
  });

  test("text over several lines is not kept (it could not be one SSE data line)", () => {
    const v = parseKeepingText('{"a":\n1}');
    expect(toJson(v)).toBe('{"a":1}');
    expect(toJson(parseKeepingText('{"a":\r1}'))).toBe('{"a":1}');
  });

  test("a changed value serialises again", () => {
    const v = parseKeepingText('{"model": "x"}') as { model: string };
    changed(v);
    v.model = "y";
    expect(toJson(v)).toBe('{"model":"y"}');
  });

  test("scalars, null and values never parsed serialise as JSON does", () => {
    expect(toJson(parseKeepingText("5"))).toBe("5");
    expect(toJson(parseKeepingText("null"))).toBe("null");
    expect(toJson({ b: 2 })).toBe('{"b":2}');
    expect(() => changed(null)).not.toThrow();
    expect(() => changed(7)).not.toThrow();
  });
});

test("a copy made to change something does not carry the text", () => {
  const v = parseKeepingText('{"model":"x","n":1}') as { model: string };
  expect(toJson({ ...v, model: "y" })).toBe('{"model":"y","n":1}');
  expect(toJson(Object.assign({}, v, { model: "z" }))).toBe('{"model":"z","n":1}');
  // even an unchanged copy: it is not the value the text was kept for
  expect(toJson({ ...v })).toBe('{"model":"x","n":1}');
});
