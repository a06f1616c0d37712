import { affinityKey } from "../../../../lib/routing/affinity-key";

describe("affinityKey", () => {
  const sys = { role: "system" as const, content: "be brief" };
  test("the user field wins", () => {
    expect(affinityKey("m", "alice", [sys])).toBe("user:alice");
  });
  test("later turns of a conversation share the key of its opening", () => {
    const turn1 = [sys, { role: "user" as const, content: "hi" }];
    const turn2 = [
      ...turn1,
      { role: "assistant" as const, content: "hello" },
      { role: "user" as const, content: "more" },
    ];
    expect(affinityKey("m", undefined, turn2)).toBe(affinityKey("m", undefined, turn1));
    expect(affinityKey("m", undefined, [sys, { role: "user", content: "other" }])).not.toBe(
      affinityKey("m", undefined, turn1),
    );
    expect(affinityKey("n", undefined, turn1)).not.toBe(affinityKey("m", undefined, turn1));
    expect(affinityKey("m", undefined, undefined)).toBeUndefined();
  });
  test("requests without a user message do not all share one key", () => {
    expect(affinityKey("m", undefined, [sys])).not.toBe(
      affinityKey("m", undefined, [{ role: "system", content: "other" }]),
    );
  });
  test("a prompt_cache_key ties turns together before the user and the opening do, per model", () => {
    const a = [sys, { role: "user" as const, content: "one" }];
    const b = [sys, { role: "user" as const, content: "two" }];
    expect(affinityKey("m", "u1", a, "agent-1")).toBe(affinityKey("m", "u2", b, "agent-1"));
    expect(affinityKey("m", "u1", a, "agent-1")).not.toBe(affinityKey("m", "u1", a, "agent-2"));
    expect(affinityKey("n", undefined, a, "agent-1")).not.toBe(affinityKey("m", undefined, a, "agent-1"));
    expect(affinityKey("m", "u1", a, "")).toBe(affinityKey("m", "u1", b));
  });
});
