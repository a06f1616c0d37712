/** The memory size parser (lib/config/parsers.ts): binary units, bytes, and what it refuses. */
import { InvalidValue, memorySize } from "../../../../lib/config/parsers";

describe("memorySize", () => {
  const p = memorySize();

  test.each([
    ["24gb", 24 * 2 ** 30],
    ["512mb", 512 * 2 ** 20],
    ["1.5g", 1.5 * 2 ** 30],
    ["1073741824", 1073741824],
    ["2GiB", 2 * 2 ** 30],
    ["2 GiB", 2 * 2 ** 30],
    ["  8G  ", 8 * 2 ** 30],
    ["64k", 64 * 1024],
    ["64kb", 64 * 1024],
    ["64KiB", 64 * 1024],
    ["1t", 2 ** 40],
    ["100b", 100],
    ["100B", 100],
    ["1", 1],
    ["0.5kb", 512],
    ["1.0000001b", 1],
  ])("%j is %d bytes", (raw, bytes) => {
    expect(p.parse(raw)).toBe(bytes);
  });

  test.each([
    "",
    " ",
    "gb",
    "-1gb",
    "-5",
    "1e9",
    "1,5g",
    "1.5.0g",
    "12 gigabytes",
    "3pb",
    "1ib",
    "1x",
    "0x10",
    ".5g",
    "5.g",
  ])("%j is refused with what it expects", (raw) => {
    expect(() => p.parse(raw)).toThrow(InvalidValue);
    expect(() => p.parse(raw)).toThrow("must be a size such as 24gb, 512mb or 1073741824");
  });

  test.each(["0", "0gb", "0.4", "0.0001kb"])("%j (nothing, once rounded to bytes) is refused", (raw) => {
    expect(() => p.parse(raw)).toThrow(InvalidValue);
    expect(() => p.parse(raw)).toThrow("must be more than 0 bytes");
  });

  test("shows a value as its number of bytes, which parses back to itself", () => {
    expect(p.show(1.5 * 2 ** 30)).toBe("1610612736");
    expect(p.parse(p.show(1610612736))).toBe(1610612736);
    expect(p.accepts).toContain("24gb");
  });
});
