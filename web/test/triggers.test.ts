import { describe, expect, it } from "vitest";
import { firesAbove, movement, orderKind, type TriggerView } from "../src/lib/triggers";

const order = (fields: Partial<TriggerView>): TriggerView => ({
  id: "1",
  side: "Ask",
  orderType: "Limit",
  status: "TriggerPending",
  triggerPrice: null,
  parentOrderId: null,
  relatedOrderId: null,
  ...fields,
});

describe("conditional orders as shown", () => {
  it("says which way the last price must move", () => {
    expect(movement("1700", "1600")).toBe("rises");
    expect(movement("1500.5", "1600")).toBe("falls");
    expect(movement("1600.00", "1600")).toBe("now");
    expect(movement("1500", null)).toBeNull();
    expect(movement("x", "1600")).toBeNull();
  });

  it("names plain orders and stops", () => {
    expect(orderKind(order({ orderType: "Market" }), [], "1600")).toBe("Market");
    expect(orderKind(order({ triggerPrice: "1500" }), [], "1600")).toBe("Stop limit");
    expect(orderKind(order({ triggerPrice: "1500", orderType: "Market" }), [], "1600")).toBe("Stop market");
  });

  it("tells a pending stop's direction by the last price", () => {
    expect(firesAbove(order({ triggerPrice: "1500" }), [], "1600")).toBe(false);
    expect(firesAbove(order({ triggerPrice: "1700" }), [], "1600")).toBe(true);
    expect(firesAbove(order({ triggerPrice: "1700" }), [], null)).toBeNull();
    expect(firesAbove(order({ triggerPrice: "1700", status: "Cancelled" }), [], "1600")).toBeNull();
    expect(firesAbove(order({}), [], "1600")).toBeNull();
  });

  it("tells take-profit from stop-loss by the pair's prices, whatever the last price", () => {
    // A buy's legs sell: take-profit above, stop-loss below.
    const tp = order({ id: "7", triggerPrice: "1800", parentOrderId: "5", relatedOrderId: "8" });
    const sl = order({ id: "8", triggerPrice: "1400", parentOrderId: "5", relatedOrderId: "7" });
    expect(orderKind(tp, [tp, sl], null)).toBe("Take profit limit");
    expect(orderKind({ ...sl, orderType: "Market" }, [tp, sl], null)).toBe("Stop loss market");
    // A sell's legs buy back: take-profit below, stop-loss above.
    const buyTp = { ...sl, side: "Bid" as const };
    const buySl = { ...tp, side: "Bid" as const };
    expect(orderKind(buyTp, [buyTp, buySl], "1600")).toBe("Take profit limit");
    expect(orderKind(buySl, [buyTp, buySl], "1600")).toBe("Stop loss limit");
  });

  it("tells a lone leg by the last price, or says it cannot", () => {
    const leg = order({ triggerPrice: "1800", parentOrderId: "5" });
    expect(orderKind(leg, [leg], "1600")).toBe("Take profit limit");
    expect(orderKind(leg, [leg], "1900")).toBe("Stop loss limit");
    expect(orderKind(leg, [leg], null)).toBe("TP/SL limit");
  });
});
