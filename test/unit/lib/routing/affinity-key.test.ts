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
});
