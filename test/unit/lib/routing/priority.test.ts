import { toOpenAIError } from "../../../../lib/openai/errors";
import { DEFAULT_PRIORITY, parsePriority, PRIORITIES, priorityValue } from "../../../../lib/routing/priority";

test("a priority is a known name or a whole number 0–1000; null clears it; anything else is a 400 naming the field", () => {
  expect(parsePriority("interactive")).toBe("interactive");
  expect(parsePriority("batch")).toBe("batch");
  expect(parsePriority(0)).toBe(0);
  expect(parsePriority(1000)).toBe(1000);
  expect(parsePriority(null)).toBeNull();
  for (const bad of ["urgent", "", -1, 1001, 2.5, "500", true, {}, [], "__proto__", "toString"]) {
    const err = toOpenAIError(
      (() => {
        try {
          parsePriority(bad);
        } catch (e) {
          return e;
        }
        throw new Error(`accepted ${JSON.stringify(bad)}`);
      })(),
    );
    expect(err.status).toBe(400);
    expect(err.body.error.param).toBe("priority");
  }
});

test("names stand for numbers, higher first; none is normal", () => {
  expect(priorityValue("interactive")).toBeGreaterThan(priorityValue("normal"));
  expect(priorityValue("normal")).toBeGreaterThan(priorityValue("batch"));
  expect(priorityValue(undefined)).toBe(DEFAULT_PRIORITY);
  expect(priorityValue(null)).toBe(PRIORITIES.normal);
  expect(priorityValue(650)).toBe(650);
});
