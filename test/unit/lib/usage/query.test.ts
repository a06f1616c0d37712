/** `GET /api/usage`'s query (lib/usage/query.ts): defaults, and each bad value a 400 naming its field. */
import { toOpenAIError } from "../../../../lib/openai/errors";
import { parseDay, parseUsageQuery } from "../../../../lib/usage/query";

const NOW = Date.UTC(2026, 2, 15, 18, 30);

/** The status and param of what a parse throws. */
function refusal(query: Record<string, unknown>): { status?: number; param?: string | null } {
  try {
    parseUsageQuery(query, NOW);
  } catch (err) {
    const { status, body } = toOpenAIError(err);
    return { status, param: body.error.param };
  }
  throw new Error(`not refused: ${JSON.stringify(query)}`);
}

describe("usage query", () => {
  test("defaults: by key, the 30 days up to today (UTC), JSON", () => {
    expect(parseUsageQuery({}, NOW)).toEqual({ group_by: "key", from: "2026-02-14", to: "2026-03-15", format: "json" });
    expect(parseUsageQuery({ group_by: "day", from: "2026-03-01", format: "csv" }, NOW)).toEqual({
      group_by: "day",
      from: "2026-03-01",
      to: "2026-03-15",
      format: "csv",
    });
    expect(parseUsageQuery({ to: "2025-01-10" }, NOW)).toMatchObject({ from: "2024-12-12", to: "2025-01-10" });
    expect(parseUsageQuery({ from: "2026-03-15", to: "2026-03-15" }, NOW)).toMatchObject({ from: "2026-03-15" });
    // ten years exactly is allowed
    expect(parseUsageQuery({ from: "2016-03-15", to: "2026-03-15" }, NOW)).toMatchObject({ from: "2016-03-15" });
    for (const g of ["key", "user", "model", "node", "day"])
      expect(parseUsageQuery({ group_by: g }, NOW).group_by).toBe(g);
  });

  test("bad values are 400s naming the field", () => {
    expect(refusal({ group_by: "team" })).toEqual({ status: 400, param: "group_by" });
    expect(refusal({ group_by: ["key", "day"] })).toEqual({ status: 400, param: "group_by" });
    expect(refusal({ format: "xml" })).toEqual({ status: 400, param: "format" });
    for (const bad of ["2026-02-30", "2026-3-1", "yesterday", "2026-03-01T00:00:00Z", "20260301"]) {
      expect(refusal({ from: bad })).toEqual({ status: 400, param: "from" });
      expect(refusal({ to: bad })).toEqual({ status: 400, param: "to" });
    }
    expect(refusal({ from: "2026-03-02", to: "2026-03-01" })).toEqual({ status: 400, param: "from" });
    // a from after today, to defaulting to today
    expect(refusal({ from: "2026-03-16" })).toEqual({ status: 400, param: "from" });
    expect(refusal({ from: "2016-03-14", to: "2026-03-15" })).toEqual({ status: 400, param: "from" });
  });

  test("days are checked on the calendar", () => {
    expect(parseDay("2024-02-29")).toBe(Date.UTC(2024, 1, 29));
    expect(parseDay("2025-02-29")).toBeNull();
    expect(parseDay("2025-13-01")).toBeNull();
  });
});
