/**
 * The usage store on moleculer-db's NeDB adapter (lib/usage/store.ts): adds
 * increment the stored rows, never overwrite them, also when two adds race
 * to insert a new row; reads by day range and user. And `addChunks`: a
 * refused row is dropped alone, an unreachable store gives back what it did
 * not add.
 */
import DbService from "moleculer-db";
import { ServiceBroker, type Service } from "moleculer";
import { rollUp, summarize, type UsageRow } from "../../../../lib/usage/rollup";
import { AdapterUsageStore, addChunks, UsageStoreUnavailable, type UsageAdapter } from "../../../../lib/usage/store";
import { historyRecord } from "../../../helpers/history";

const T0 = Date.UTC(2026, 4, 10, 8);
const DAY = 86_400_000;
const quiet = { info: () => undefined, warn: () => undefined, error: jest.fn() };

async function memoryStore(): Promise<AdapterUsageStore> {
  const adapter = new DbService.MemoryAdapter();
  const broker = new ServiceBroker({ logger: false });
  adapter.init(broker, { schema: { collection: "usage_daily" }, logger: broker.logger } as unknown as Service);
  await adapter.connect();
  return AdapterUsageStore.open(adapter as unknown as UsageAdapter, quiet);
}

const recs = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) =>
    historyRecord(`r${from + i}`, T0 + (i % 2) * DAY, {
      api_key_id: i % 3 ? "k1" : "k2",
      user_id: i % 3 ? "u1" : "u2",
      status: i % 5 ? 200 : 503,
      duration_ms: 3 + i * 7,
      tokens_out: i,
    }),
  );

describe("on the NeDB adapter", () => {
  test("adds increment the stored rows; reads by day range and user", async () => {
    const store = await memoryStore();
    const first = recs(30);
    const second = recs(20, 30);
    await store.add(rollUp(first));
    await store.add(rollUp(second));
    const range = { from: "2026-05-01", to: "2026-05-31" };
    const all = await store.rows(range);
    expect(summarize(all, "key")).toEqual(summarize(rollUp([...first, ...second]), "key"));
    expect(summarize(all, "day").map((d) => [d.group, d.requests])).toEqual([
      ["2026-05-10", 25],
      ["2026-05-11", 25],
    ]);
    expect(await store.rows({ from: "2026-05-11", to: "2026-05-11" })).toHaveLength(2);
    const mine = await store.rows({ ...range, userId: "u2" });
    expect(mine.every((r) => r.user_id === "u2")).toBe(true);
    expect(summarize(mine, "user")).toEqual(summarize(rollUp([...first, ...second]), "user").slice(1, 2));
  });

  test("adds racing to insert a new row each add theirs", async () => {
    const store = await memoryStore();
    const parts = Array.from({ length: 8 }, (_, i) => rollUp(recs(12, i * 12)));
    await Promise.all(parts.map((rows) => store.add(rows)));
    const stored = await store.rows({ from: "2026-05-01", to: "2026-05-31" });
    expect(summarize(stored, "key")).toEqual(summarize(parts.flat(), "key"));
    expect(stored.reduce((a, r) => a + r.requests, 0)).toBe(96);
  });
});

describe("addChunks", () => {
  const rows = rollUp(recs(6)).map((r, i): UsageRow => ({ ...r, model: `m${i}` }));

  test("a refused row is logged and dropped; the others are added", async () => {
    const added: string[] = [];
    const log = { ...quiet, error: jest.fn() };
    await addChunks(
      [rows.slice(0, 2), rows.slice(2)],
      async (chunk) => {
        if (chunk.some((r) => r.model === "m1")) throw new Error("refused");
        added.push(...chunk.map((r) => r.model!));
      },
      log,
      () => false,
    );
    expect(added.sort()).toEqual(rows.map((r) => r.model!).filter((m) => m !== "m1"));
    expect(log.error).toHaveBeenCalledTimes(1);
  });

  test("an unreachable store gives back the rows not added", async () => {
    const added: string[] = [];
    const down = Object.assign(new Error("down"), { unreachable: true });
    const err = await addChunks(
      [rows.slice(0, 1), rows.slice(1, 3), rows.slice(3)],
      async (chunk) => {
        if (chunk.some((r) => r.model === "m2")) throw down;
        added.push(...chunk.map((r) => r.model!));
      },
      quiet,
      (e) => (e as { unreachable?: boolean }).unreachable === true,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageStoreUnavailable);
    expect(added).toEqual(["m0"]);
    expect((err as UsageStoreUnavailable).rows.map((r) => r.model)).toEqual(rows.slice(1).map((r) => r.model));
  });
});
