import { describe, expect, it } from "vitest";
import { checkWithdrawal, withdrawalTotal, type WithdrawalRules } from "../src/lib/withdrawal";

const USDT: WithdrawalRules = {
  asset: "USDT",
  network: "Ethereum",
  decimals: 6,
  fee: "1",
  minimum: "5",
  maximum: "100000",
  most: "99",
};

describe("withdrawal checks", () => {
  it("accepts a quantity within the network's rules and what can go now", () => {
    expect(checkWithdrawal("5", USDT)).toBeUndefined();
    expect(checkWithdrawal(" 99.000000 ", USDT)).toBeUndefined();
    expect(checkWithdrawal("12.5", { ...USDT, maximum: null, most: null })).toBeUndefined();
  });

  it("refuses what is not a positive number with the asset's decimals", () => {
    expect(checkWithdrawal("", USDT)).toBe("Enter a quantity");
    expect(checkWithdrawal("-5", USDT)).toBe("The quantity must be a number");
    expect(checkWithdrawal("1e3", USDT)).toBe("The quantity must be a number");
    expect(checkWithdrawal("0", USDT)).toBe("The quantity must be above zero");
    expect(checkWithdrawal("5.0000001", USDT)).toBe("USDT has at most 6 decimals");
  });

  it("refuses below the minimum, above the maximum, and more than can go now", () => {
    expect(checkWithdrawal("4.99", USDT)).toBe("The smallest withdrawal on Ethereum is 5 USDT");
    expect(checkWithdrawal("100001", { ...USDT, most: null })).toBe(
      "The largest withdrawal on Ethereum is 100000 USDT",
    );
    expect(checkWithdrawal("99.01", USDT)).toBe(
      "Too much: you can withdraw at most 99 USDT on Ethereum now " +
        "(your available balance less the 1 USDT fee, within the daily limit)",
    );
  });

  it("counts the fee in what leaves the balance", () => {
    expect(withdrawalTotal("10", "0.5")).toBe("10.5");
    expect(withdrawalTotal("x", "0.5")).toBe("");
  });
});
