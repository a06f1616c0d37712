import {
  conversationOf,
  inputItemsPage,
  parseListQuery,
  scopeOf,
  withItemIds,
  type Item,
  type StoredResponse,
} from "../../../../lib/responses/store";

const items = (n: number): Item[] =>
  Array.from({ length: n }, (_, i) => ({ type: "message", role: "user", content: `m${i}`, id: `msg_${i}` }));

const stored = (over: Partial<StoredResponse> = {}): StoredResponse => ({
  id: "resp_1",
  scope: "key:k1",
  ts: 0,
  model: "m",
  node_id: "node-a",
  producer: "router",
  prefix_json: JSON.stringify([{ type: "message", role: "user", content: "first", id: "msg_p" }]),
  input_json: JSON.stringify([{ type: "message", role: "user", content: "second", id: "msg_i" }]),
  response_json: JSON.stringify({
    id: "resp_1",
    output: [
      { type: "reasoning", id: "rs_1", summary: [] },
      { type: "message", id: "msg_o", role: "assistant", content: [{ type: "output_text", text: "hi" }] },
      { type: "function_call", id: "fc_1", call_id: "call_1", name: "f", arguments: "{}" },
    ],
  }),
  ...over,
});

describe("stored responses: owners", () => {
  test("an API key owns its responses; a login its playground's; no keys at all: one open scope", () => {
    expect(scopeOf({ kind: "apiKey", key: { id: "k1" } })).toBe("key:k1");
    expect(scopeOf({ kind: "apiKey", key: { id: "k2" } })).not.toBe(scopeOf({ kind: "apiKey", key: { id: "k1" } }));
    expect(scopeOf({ kind: "user", claims: { sub: "u1" } })).toBe("user:u1");
    expect(scopeOf({ kind: "apiKey", key: null })).toBe("open");
    expect(scopeOf(undefined)).toBe("open");
  });
});

describe("stored responses: items", () => {
  test("input items get ids by type; a client's own id stays", () => {
    const out = withItemIds([
      { type: "message", role: "user", content: "x" },
      { type: "function_call_output", call_id: "c", output: "y" },
      { type: "function_call", call_id: "c", name: "f", arguments: "{}", id: "fc_mine" },
    ]);
    expect(out[0].id).toMatch(/^msg_[0-9a-f]{48}$/);
    expect(out[1].id).toMatch(/^fco_/);
    expect(out[2].id).toBe("fc_mine");
  });

  test("a continuation's conversation: the earlier turns, the input, then the output's messages and calls", () => {
    expect(conversationOf(stored()).map((i) => i.id)).toEqual(["msg_p", "msg_i", "msg_o", "fc_1"]);
  });
});

describe("stored responses: input_items pages", () => {
  test("newest first by default, 20 a page, has_more and the ids at both ends", () => {
    const page = inputItemsPage(items(25), parseListQuery({}));
    expect(page.data).toHaveLength(20);
    expect(page).toMatchObject({ object: "list", first_id: "msg_24", last_id: "msg_5", has_more: true });
    const rest = inputItemsPage(items(25), parseListQuery({ after: "msg_5" }));
    expect(rest.data.map((i) => i.id)).toEqual(["msg_4", "msg_3", "msg_2", "msg_1", "msg_0"]);
    expect(rest.has_more).toBe(false);
  });

  test("ascending, limit, before; an empty list has null ids", () => {
    const q = parseListQuery({ order: "asc", limit: "2", before: "msg_3" });
    expect(inputItemsPage(items(5), q).data.map((i) => i.id)).toEqual(["msg_0", "msg_1"]);
    expect(inputItemsPage(items(5), { ...q, after: "msg_1" }).data.map((i) => i.id)).toEqual(["msg_2"]);
    expect(inputItemsPage([], parseListQuery({}))).toEqual({
      object: "list",
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
    });
  });

  test("a bad query is a 400 naming the parameter", () => {
    const param = (q: Record<string, unknown>, run = (x: ReturnType<typeof parseListQuery>) => x) => {
      try {
        run(parseListQuery(q));
        return null;
      } catch (err) {
        const e = err as { code?: number; data?: { param?: string } };
        return e.code === 400 ? (e.data?.param ?? "?") : "not 400";
      }
    };
    expect(param({ limit: "0" })).toBe("limit");
    expect(param({ limit: "101" })).toBe("limit");
    expect(param({ order: "sideways" })).toBe("order");
    expect(param({ colour: "red" })).not.toBeNull();
    expect(param({ after: "msg_x" }, (q) => inputItemsPage(items(2), q) as never)).toBe("after");
  });
});
