import { describe, expect, it } from "vitest";
import { formatCount, formatNumber, formatShare, formatTime, parseWeight } from "../format";

describe("formatNumber", () => {
  it.each([
    [1, "1"],
    [0, "0"],
    [-3, "-3"],
    [0.70941, "0.7094"],
    [2.5, "2.5"],
    [1234.5678, "1235"],
    [0.0001234, "1.234e-4"],
    [12345678.9, "1.235e+7"],
    [Number.NaN, "NaN"],
    [Number.POSITIVE_INFINITY, "inf"],
    [Number.NEGATIVE_INFINITY, "-inf"],
  ])("%s -> %s", (v, text) => expect(formatNumber(v)).toBe(text));
});

describe("parseWeight", () => {
  it.each([
    ["1", 1],
    [" 2.5 ", 2.5],
    ["0", 0],
    [".5", 0.5],
    ["1e3", 1000],
    ["+4", 4],
  ])("accepts %j", (text, v) => expect(parseWeight(text)).toEqual({ value: v }));

  it.each([
    ["", /enter a number/],
    ["-1", />= 0; got -1/],
    ["-inf", />= 0/],
    ["abc", /not a number/],
    ["NaN", /not a number/],
    ["Infinity", /not a number/],
    ["1e999", /finite/],
    ["1,5", /not a number/],
    ["0x10", /not a number/],
  ])("refuses %j", (text, re) => {
    const r = parseWeight(text);
    expect("error" in r && r.error).toMatch(re);
  });
});

describe("counts, shares, times", () => {
  it("formats", () => {
    expect(formatCount(1_000_000)).toBe("1,000,000");
    expect(formatShare(0.12345)).toBe("12.3%");
    const now = new Date("2026-01-02T10:00:00");
    expect(formatTime(new Date("2026-01-02T09:08:07").toISOString(), now)).toBe("09:08:07");
    expect(formatTime(new Date("2025-12-31T09:08:07").toISOString(), now)).toBe("2025-12-31 09:08:07");
    expect(formatTime("not a time", now)).toBe("not a time");
  });
});
