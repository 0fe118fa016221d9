import { describe, expect, it } from "vitest";
import {
  add,
  compare,
  decimalsOf,
  div,
  floorTo,
  isMultiple,
  mul,
  normalize,
  parse,
  sub,
  toFixed,
} from "../src/lib/decimal";

describe("decimal strings, exactly", () => {
  it("parses plain decimals only", () => {
    expect(parse("1600.50")).toEqual({ units: 160050n, scale: 2 });
    expect(parse("-0.1")).toEqual({ units: -1n, scale: 1 });
    for (const bad of ["", "1e5", "NaN", "Infinity", "1.2.3", "+1", "0x10", " . "]) {
      expect(parse(bad)).toBeNull();
    }
  });

  it("adds, subtracts and multiplies without binary rounding", () => {
    expect(add("0.1", "0.2")).toBe("0.3");
    expect(sub("1600.5", "1600.50")).toBe("0");
    expect(sub("1", "1.25")).toBe("-0.25");
    expect(mul("1600.01", "3")).toBe("4800.03");
    expect(mul("0.0001", "0.0001")).toBe("0.00000001");
    expect(mul("123456789012345678.9", "10")).toBe("1234567890123456789");
  });

  it("divides, cutting towards zero", () => {
    expect(div("1", "3", 4)).toBe("0.3333");
    expect(div("-1", "3", 2)).toBe("-0.33");
    expect(div("10", "4", 0)).toBe("2");
    expect(() => div("1", "0", 2)).toThrow();
  });

  it("compares values written differently", () => {
    expect(compare("1600.5", "1600.50")).toBe(0);
    expect(compare("99.99", "100")).toBe(-1);
    expect(compare("-1", "-2")).toBe(1);
    expect(normalize("1600.500")).toBe("1600.5");
    expect(normalize("12.000")).toBe("12");
    expect(normalize("0.0")).toBe("0");
  });

  it("knows the tick and the step", () => {
    expect(decimalsOf("0.01")).toBe(2);
    expect(decimalsOf("0.0100")).toBe(2);
    expect(decimalsOf("1")).toBe(0);
    expect(isMultiple("1600.55", "0.05")).toBe(true);
    expect(isMultiple("1600.56", "0.05")).toBe(false);
    expect(isMultiple("7", "1")).toBe(true);
    expect(isMultiple("7.5", "1")).toBe(false);
    expect(floorTo("12.79", "1")).toBe("12");
    expect(floorTo("0.123456", "0.0001")).toBe("0.1234");
    expect(floorTo("3", "0.25")).toBe("3.00");
  });

  it("rounds or cuts to a number of decimals", () => {
    expect(toFixed("1.005", 2)).toBe("1.01");
    expect(toFixed("1.005", 2, "down")).toBe("1.00");
    expect(toFixed("-1.005", 2)).toBe("-1.01");
    expect(toFixed("5", 3)).toBe("5.000");
    expect(toFixed("0.9999", 2)).toBe("1.00");
  });
});
