import { describe, expect, it } from "vitest";
import { amount, changeFraction, direction, group, percent, price, quantity } from "../src/lib/format";

describe("number formatting", () => {
  it("writes prices to the tick and sizes to the step", () => {
    expect(price("1600.5", "0.01")).toBe("1,600.50");
    expect(price("1234567.891", "0.01")).toBe("1,234,567.89");
    expect(price("98000", "0.1")).toBe("98,000.0");
    expect(quantity("12", "1")).toBe("12");
    expect(quantity("0.5", "0.0001")).toBe("0.5000");
  });

  it("never shows a balance larger than it is", () => {
    expect(amount("99.999", 2)).toBe("99.99");
    expect(amount("100000", 2)).toBe("100,000.00");
  });

  it("groups thousands of negative numbers and short ones", () => {
    expect(group("-1234.5")).toBe("-1,234.5");
    expect(group("999")).toBe("999");
  });

  it("shows missing values as a dash", () => {
    expect(price(null, "0.01")).toBe("—");
    expect(price("", "0.01")).toBe("—");
    expect(percent(undefined)).toBe("—");
  });

  it("signs and colours a 24h change", () => {
    expect(percent("0.0123")).toBe("+1.23%");
    expect(percent("-0.5")).toBe("-50.00%");
    expect(percent("0")).toBe("0.00%");
    expect(direction("0.01")).toBe("up");
    expect(direction("-3")).toBe("down");
    expect(direction("0.000")).toBe("flat");
    expect(direction(null)).toBe("flat");
  });

  it("computes the change fraction from open and last", () => {
    expect(changeFraction("100", "101")).toBe("0.010000");
    expect(changeFraction("200", "150")).toBe("-0.250000");
    expect(changeFraction("", "150")).toBe("");
    expect(changeFraction("0", "150")).toBe("");
  });
});
