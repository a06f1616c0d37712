import { unreachable } from "../../../../lib/history/pg-store";
import { StoreUnavailable, writeChunks, type Doc } from "../../../../lib/history/store";

const docs = (ids: string[]) => ids.map((id) => ({ id }) as unknown as Doc);
const log = { info: jest.fn(), warn: jest.fn(), error: jest.fn() };

describe("a history store that cannot be reached", () => {
  test("PostgreSQL's connection failures are told from a refused record", () => {
    expect(unreachable({ name: "SequelizeConnectionRefusedError", message: "connect ECONNREFUSED" })).toBe(true);
    expect(unreachable({ name: "SequelizeDatabaseError", original: { code: "57P01" } })).toBe(true);
    expect(unreachable({ name: "SequelizeDatabaseError", message: "Connection terminated unexpectedly" })).toBe(true);
    expect(unreachable({ name: "SequelizeDatabaseError", original: { code: "22P02" } })).toBe(false);
    expect(unreachable({ name: "SequelizeUniqueConstraintError", original: { code: "23505" } })).toBe(false);
    expect(unreachable(undefined)).toBe(false);
  });

  test("writing stops at the first unreachable chunk and hands back what was not written", async () => {
    const written: string[] = [];
    let calls = 0;
    const insert = async (batch: Doc[]) => {
      if (++calls === 2) throw Object.assign(new Error("down"), { name: "SequelizeConnectionError" });
      written.push(...batch.map((d) => d.id));
    };
    const err = await writeChunks([docs(["a", "b"]), docs(["c"]), docs(["d"])], insert, log, unreachable).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as StoreUnavailable).unwritten.map((d) => d.id)).toEqual(["c", "d"]);
    expect(written).toEqual(["a", "b"]);
  });

  test("a record the store refuses is logged and the others are written, as before", async () => {
    const written: string[] = [];
    const insert = async (batch: Doc[]) => {
      if (batch.some((d) => d.id === "bad")) throw new Error("refused");
      written.push(...batch.map((d) => d.id));
    };
    await writeChunks([docs(["a", "bad", "c"])], insert, log, unreachable);
    expect(written).toEqual(["a", "c"]);
    expect(log.error).toHaveBeenCalledWith(expect.stringContaining("record bad not written"));
  });
});
