import { describe, expect, it } from "vitest";
import { type MarketRules, cleanNumber, orderTotal, validateOrder } from "../src/lib/validate";
import { quantityFor } from "../src/lib/sizing";

const TATA: MarketRules = {
  symbol: "TATA_INR",
  baseSymbol: "TATA",
  quoteSymbol: "INR",
  tickSize: "0.01",
  minPrice: "0.01",
  maxPrice: "1000000",
  stepSize: "1",
  minQuantity: "1",
  maxQuantity: "1000000",
  minNotional: "10",
};
const BTC: MarketRules = {
  ...TATA,
  symbol: "BTC_USDT",
  baseSymbol: "BTC",
  quoteSymbol: "USDT",
  stepSize: "0.0001",
  minQuantity: "0.0001",
};

const limit = (price: string, quantity: string, side: "Bid" | "Ask" = "Bid") => ({
  side,
  orderType: "Limit" as const,
  price,
  quantity,
});

describe("order form validation", () => {
  it("accepts an order on the tick and the step", () => {
    expect(validateOrder(limit("1600.50", "7"), TATA)).toEqual({});
    expect(validateOrder(limit("98000", "0.0123"), BTC)).toEqual({});
  });

  it("rejects too many decimals in the price and the quantity", () => {
    expect(validateOrder(limit("1600.505", "7"), TATA).price).toBe("The price can have at most 2 decimals");
    expect(validateOrder(limit("1600", "1.5"), TATA).quantity).toBe(
      "The quantity must be a whole number of TATA",
    );
    expect(validateOrder(limit("1", "0.00001"), BTC).quantity).toBe(
      "The quantity can have at most 4 decimals",
    );
  });

  it("rejects what is not a positive number", () => {
    for (const bad of ["abc", "-5", "1e3", "NaN", "Infinity", "1,5"]) {
      expect(validateOrder(limit(bad, "1"), TATA).price).toBeDefined();
      expect(validateOrder(limit("1", bad), TATA).quantity).toBeDefined();
    }
    expect(validateOrder(limit("0", "1"), TATA).price).toBe("The price must be above zero");
    expect(validateOrder(limit("1", "0"), TATA).quantity).toBe("The quantity must be above zero");
    expect(validateOrder(limit("", ""), TATA)).toEqual({
      price: "Enter a price",
      quantity: "Enter a quantity",
    });
  });

  it("checks the market's limits and minimum value", () => {
    const rules = { ...TATA, tickSize: "0.05", minQuantity: "5", maxQuantity: "100" };
    expect(validateOrder(limit("10.03", "5"), rules).price).toBe(
      "The price must be a multiple of the tick size 0.05",
    );
    expect(validateOrder(limit("2000000", "5"), TATA).price).toBe("The highest price is 1000000");
    expect(validateOrder(limit("10", "4"), rules).quantity).toBe("The smallest quantity is 5 TATA");
    expect(validateOrder(limit("10", "101"), rules).quantity).toBe("The largest quantity is 100 TATA");
    expect(validateOrder(limit("9.99", "1"), TATA).total).toBe("The order's value must be at least 10 INR");
  });

  it("does not ask a market order for a price", () => {
    expect(validateOrder({ side: "Ask", orderType: "Market", price: "", quantity: "3" }, TATA)).toEqual({});
  });

  it("checks a stop's trigger price like a price", () => {
    const stop = { side: "Ask" as const, orderType: "Market" as const, price: "", quantity: "2" };
    expect(validateOrder({ ...stop, triggerPrice: "1500" }, TATA)).toEqual({});
    expect(validateOrder({ ...stop, triggerPrice: "" }, TATA).triggerPrice).toBe("Enter a trigger price");
    expect(validateOrder({ ...stop, triggerPrice: "1500.001" }, TATA).triggerPrice).toBe(
      "The trigger price can have at most 2 decimals",
    );
    expect(validateOrder({ ...limit("1490", "2", "Ask"), triggerPrice: "1500" }, TATA)).toEqual({});
    expect(validateOrder({ ...limit("", "2", "Ask"), triggerPrice: "1500" }, TATA).price).toBe(
      "Enter a price",
    );
  });

  it("checks the take-profit and stop-loss legs", () => {
    const legs = { tpTrigger: "", tpLimit: "", slTrigger: "", slLimit: "" };
    const buy = limit("1600", "3");
    expect(
      validateOrder({ ...buy, bracket: { ...legs, tpTrigger: "1800", slTrigger: "1400" } }, TATA),
    ).toEqual({});
    expect(validateOrder({ ...buy, bracket: { ...legs, slTrigger: "1400", slLimit: "1390" } }, TATA)).toEqual(
      {},
    );
    expect(validateOrder({ ...buy, bracket: legs }, TATA).bracket).toBe(
      "Enter a take-profit or a stop-loss trigger price",
    );
    expect(validateOrder({ ...buy, bracket: { ...legs, tpLimit: "1790" } }, TATA).tpTrigger).toBe(
      "Enter the take-profit trigger price for its limit price",
    );
    expect(
      validateOrder({ ...buy, bracket: { ...legs, slTrigger: "1400", slLimit: "13.999" } }, TATA).slLimit,
    ).toBe("The stop-loss limit price can have at most 2 decimals");
    expect(
      validateOrder({ ...buy, bracket: { ...legs, tpTrigger: "1400", slTrigger: "1800" } }, TATA).bracket,
    ).toBe("A buy's take-profit must lie above its stop-loss");
    const sell = limit("1600", "3", "Ask");
    expect(
      validateOrder({ ...sell, bracket: { ...legs, tpTrigger: "1800", slTrigger: "1800" } }, TATA).bracket,
    ).toBe("A sell's take-profit must lie below its stop-loss");
    expect(
      validateOrder({ ...sell, bracket: { ...legs, tpTrigger: "1400", slTrigger: "1800" } }, TATA),
    ).toEqual({});
  });

  it("reads numbers as people type them", () => {
    expect(cleanNumber(" 5. ")).toBe("5");
    expect(cleanNumber(".5")).toBe("0.5");
    expect(cleanNumber("5.5.5")).toBeNull();
    expect(orderTotal("1600.50", "3")).toBe("4801.5");
    expect(orderTotal("x", "3")).toBe("");
  });
});

describe("percentage of balance", () => {
  it("sells a share of the base balance, on the step", () => {
    expect(
      quantityFor({ side: "Ask", percent: 50, available: "15", price: "", stepSize: "1", feeBps: 0 }),
    ).toBe("7");
    expect(
      quantityFor({
        side: "Ask",
        percent: 100,
        available: "0.12345",
        price: "",
        stepSize: "0.0001",
        feeBps: 0,
      }),
    ).toBe("0.1234");
  });

  it("buys what a share of the quote balance pays for, fee included", () => {
    // 1000 INR at 100 with a 10 bps fee: 1000 / 100.1 = 9.99 -> 9.
    expect(
      quantityFor({ side: "Bid", percent: 100, available: "1000", price: "100", stepSize: "1", feeBps: 10 }),
    ).toBe("9");
    expect(
      quantityFor({ side: "Bid", percent: 25, available: "1000", price: "100", stepSize: "1", feeBps: 0 }),
    ).toBe("2");
    expect(
      quantityFor({ side: "Bid", percent: 100, available: "1000", price: "", stepSize: "1", feeBps: 0 }),
    ).toBe("");
  });
});
